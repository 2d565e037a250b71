package redis

import "github.com/redis/go-redis/v9"

// As offers the go-redis client of the Store (the one behind every
// kombu.Connection and kombu.Channel on redis://, rediss:// and
// sentinel://): target may be a **redis.Client or a *redis.UniversalClient.
// The client belongs to the Store: do not close it.
func (s *Store) As(target any) bool {
	switch p := target.(type) {
	case **redis.Client:
		*p = s.rdb
	case *redis.UniversalClient:
		*p = s.rdb
	default:
		return false
	}
	return true
}
