package main

// The transports this binary speaks, one blank import each: a new transport
// is one more line here, and every command works on it by URL.
import (
	_ "github.com/kombu-go/kombu/transport/amqp"
	_ "github.com/kombu-go/kombu/transport/beanstalk"
	_ "github.com/kombu-go/kombu/transport/couchdb"
	_ "github.com/kombu-go/kombu/transport/memory"
	_ "github.com/kombu-go/kombu/transport/mongodb"
	_ "github.com/kombu-go/kombu/transport/postgres"
	_ "github.com/kombu-go/kombu/transport/redis"
	_ "github.com/kombu-go/kombu/transport/sqlite"
	_ "github.com/kombu-go/kombu/transport/sqs"
)
