package sqs

import (
	"errors"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/kombu-go/kombu/kombu/driver"
)

func parse(t *testing.T, raw string) (*Options, error) {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	return ParseURL(u)
}

func TestParseURLForms(t *testing.T) {
	cases := []struct {
		raw      string
		endpoint string
		key      string
		region   string
	}{
		{"sqs://", "", "", DefaultRegion},
		{"sqs://AK:SK@", "", "AK", DefaultRegion},
		{"sqs://AK:SK@localhost:4566?is_secure=false", "http://localhost:4566", "AK", DefaultRegion},
		{"sqs://AK:SK@sqs.example", "https://sqs.example", "AK", DefaultRegion},
		{"sqs://AK:SK@?endpoint_url=http://127.0.0.1:9&region=eu-west-3", "http://127.0.0.1:9", "AK", "eu-west-3"},
		{"SQS://[::1]:9?is_secure=false", "http://[::1]:9", "", DefaultRegion},
	}
	for _, c := range cases {
		o, err := parse(t, c.raw)
		if err != nil {
			t.Errorf("%s: %v", c.raw, err)
			continue
		}
		if o.EndpointURL != c.endpoint || o.AccessKeyID != c.key || o.Region != c.region {
			t.Errorf("%s: endpoint %q key %q region %q; want %q %q %q", c.raw, o.EndpointURL, o.AccessKeyID, o.Region, c.endpoint, c.key, c.region)
		}
	}
	o, err := parse(t, "sqs://AK:a%2Fb%2Bc@?visibility_timeout=30&wait_time_seconds=0&polling_interval=0.25&queue_name_prefix=p-&sqs_base64_encoding=false")
	if err != nil {
		t.Fatal(err)
	}
	if o.SecretAccessKey != "a/b+c" || o.VisibilityTimeout != 30*time.Second || o.WaitTimeSeconds != 0 ||
		o.PollingInterval != 250*time.Millisecond || o.QueueNamePrefix != "p-" || o.Base64 {
		t.Errorf("options %+v", o)
	}
	o, err = parse(t, `sqs://?predefined_queues=`+url.QueryEscape(`{"celery":{"url":"https://sqs.us-east-1.amazonaws.com/1/celery","backoff_policy":{"1":10,"2":20},"backoff_tasks":["t"]}}`)+
		`&sqs-creation-attributes=`+url.QueryEscape(`{"MessageRetentionPeriod":"60"}`))
	if err != nil {
		t.Fatal(err)
	}
	if pq := o.PredefinedQueues["celery"]; pq.BackoffPolicy[2] != 20 || pq.BackoffTasks[0] != "t" || o.CreationAttributes["MessageRetentionPeriod"] != "60" {
		t.Errorf("predefined %+v, creation %v", o.PredefinedQueues, o.CreationAttributes)
	}
}

// Bad input is an ErrInvalidURL naming the problem, never holding the
// secret.
func TestParseURLRefuses(t *testing.T) {
	const secret = "TOPSECRETvalue"
	bad := map[string]string{
		"sqs://AK:" + secret + "@?nope=1":                    "unknown option",
		"sqs://AK:" + secret + "@h:1?endpoint_url=http://x":  "not both",
		"sqs://AK:" + secret + "@?endpoint_url=ftp://x":      "endpoint_url",
		"sqs://AK:" + secret + "@?visibility_timeout=0":      "visibility_timeout",
		"sqs://AK:" + secret + "@?visibility_timeout=50000":  "visibility_timeout",
		"sqs://AK:" + secret + "@?wait_time_seconds=21":      "wait_time_seconds",
		"sqs://AK:" + secret + "@?polling_interval=0":        "polling_interval",
		"sqs://AK:" + secret + "@?region=":                   "region",
		"sqs://AK:" + secret + "@/path":                      "path",
		"sqs://:" + secret + "@":                             "both",
		"amqp://AK:" + secret + "@":                          "scheme",
		"sqs://AK:" + secret + "@?predefined_queues=notjson": "predefined_queues",
		"sqs://AK:" + secret + "@?predefined_queues=" + url.QueryEscape(`{"q":{"url":"https://h/1/q","access_key_id":"x"}}`): "predefined_queues",
		"sqs://AK:" + secret + "@?predefined_queues=" + url.QueryEscape(`{"q.fifo":{"url":"https://h/1/q"}}`):                "fifo",
		"sqs://AK:" + secret + "@?predefined_queues=" + url.QueryEscape(`{"q":{"url":""}}`):                                  "url",
		"sqs://AK:" + secret + "@?sqs-creation-attributes=" + url.QueryEscape(`{"a":1}`):                                     "sqs-creation-attributes",
	}
	for raw, want := range bad {
		_, err := parse(t, raw)
		if err == nil {
			t.Errorf("%s accepted", raw)
			continue
		}
		if !errors.Is(err, driver.ErrInvalidURL) || !strings.Contains(err.Error(), want) || strings.Contains(err.Error(), secret) {
			t.Errorf("%s: %v; want ErrInvalidURL mentioning %q, without the secret", raw, err, want)
		}
	}
}

// The connector's description never holds the secret.
func TestConnectorStringRedacted(t *testing.T) {
	o, err := parse(t, "sqs://AK:TOPSECRET@h:1")
	if err != nil {
		t.Fatal(err)
	}
	if s := NewConnector(o).String(); strings.Contains(s, "TOPSECRET") || !strings.Contains(s, "AK") {
		t.Errorf("String() = %q", s)
	}
}

func TestQueueName(t *testing.T) {
	cases := map[[2]string]string{
		{"", "celery"}:                       "celery",
		{"wirefmt-", "wirefmt.celery:tasks"}: "wirefmt-wirefmt-celery_tasks", // observed from Python kombu
		{"wirefmt-", "wirefmt.jobs.fifo"}:    "wirefmt-wirefmt-jobs.fifo",
		{"", "a b/é"}:                        "a_b__",
		{"", "x_y-z"}:                        "x_y-z",
	}
	for in, want := range cases {
		if got := QueueName(in[0], in[1]); got != want {
			t.Errorf("QueueName(%q, %q) = %q, want %q", in[0], in[1], got, want)
		}
	}
	long := strings.Repeat("a", 200)
	a, b := QueueName("", long), QueueName("", long+"b")
	if len(a) != maxQueueNameLen || len(b) != maxQueueNameLen || a == b {
		t.Errorf("long names %q %q: want distinct names of %d characters", a, b, maxQueueNameLen)
	}
	if f := QueueName("", long+".fifo"); len(f) != maxQueueNameLen || !strings.HasSuffix(f, ".fifo") {
		t.Errorf("long FIFO name %q", f)
	}
}
