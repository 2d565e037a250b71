package couchdb

import "github.com/go-kivik/kivik/v4"

// As offers the kivik client beneath the Store (the one behind every
// kombu.Connection and kombu.Channel on couchdb:// and couchdbs://): target
// may be a **kivik.Client or a **kivik.DB (the database of the URL). Both
// belong to the Store: do not close them.
func (s *Store) As(target any) bool {
	switch p := target.(type) {
	case **kivik.Client:
		*p = s.client
	case **kivik.DB:
		*p = s.db
	default:
		return false
	}
	return true
}
