package sqs_test

import (
	"fmt"
	"net/url"

	"github.com/kombu-go/kombu/transport/sqs"
)

// ParseURL reads kombu's URL form; the secret never shows in the
// connector's description.
func ExampleParseURL() {
	u, _ := url.Parse("sqs://AKIDEXAMPLE:s3cr%2Ft@127.0.0.1:4566?is_secure=false&region=eu-west-1&queue_name_prefix=dev-")
	o, err := sqs.ParseURL(u)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(o.EndpointURL, o.Region, o.VisibilityTimeout)
	fmt.Println(sqs.NewConnector(o))
	fmt.Println(sqs.QueueName(o.QueueNamePrefix, "celery.tasks:high"))
	// Output:
	// http://127.0.0.1:4566 eu-west-1 30m0s
	// sqs://AKIDEXAMPLE:**@?endpoint_url=http%3A%2F%2F127.0.0.1%3A4566&region=eu-west-1
	// dev-celery-tasks_high
}
