package sqs

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/kombu-go/kombu/kombu/driver"
	"github.com/kombu-go/kombu/transport"
)

// Defaults of the transport options, as in Python kombu 5.2.4 where kombu
// has the option.
const (
	DefaultRegion            = "us-east-1"
	DefaultVisibilityTimeout = 1800 * time.Second
	DefaultWaitTimeSeconds   = 10
	// DefaultPollingInterval is the pause between two rounds of short
	// polls when a channel consumes several queues (one queue is long
	// polled instead).
	DefaultPollingInterval = time.Second
)

// SQS's own limits.
const (
	// MaxMessageSize is SQS's largest message (1 MiB): the kombu envelope
	// in base64, so bodies up to about 560 KiB fit (Description's
	// Features.MaxBodySize).
	MaxMessageSize = 1 << 20

	maxVisibilityTimeout = 12 * time.Hour
	maxWaitTimeSeconds   = 20
	maxDelaySeconds      = 900
	maxBatch             = 10 // entries per SendMessageBatch, ReceiveMessage, DeleteMessageBatch
)

// PredefinedQueue is one entry of kombu's predefined_queues: a queue that
// exists already, used through its URL with no ListQueues, GetQueueUrl or
// CreateQueue call.
type PredefinedQueue struct {
	URL string `json:"url"`
	// BackoffPolicy maps a receive count (1 for the first delivery) to
	// the visibility timeout, in seconds, that a requeue of a message
	// received that often sets instead of 0 (kombu's backoff_policy).
	BackoffPolicy map[int]int `json:"backoff_policy,omitempty"`
	// BackoffTasks limits BackoffPolicy to messages whose "task" header
	// (Celery's task name) is listed; empty means every message.
	BackoffTasks []string `json:"backoff_tasks,omitempty"`
}

// Options are the parsed URL and query options of one sqs:// URL. The zero
// value is not usable; ParseURL fills in every default.
type Options struct {
	// AccessKeyID and SecretAccessKey come from the URL's user info
	// (kombu's sqs://KEY:SECRET@). Both empty: the SDK's default chain
	// (environment, shared files, instance role) is used at dial.
	AccessKeyID     string
	SecretAccessKey string
	Region          string // region, default us-east-1
	// EndpointURL is where every request goes (endpoint_url, or kombu's
	// host[:port] with is_secure); "" means AWS's endpoint for Region.
	EndpointURL string
	// QueueNamePrefix is put before every queue name (queue_name_prefix).
	QueueNamePrefix string
	// VisibilityTimeout is the VisibilityTimeout attribute of the queues
	// this transport creates (visibility_timeout, whole seconds).
	VisibilityTimeout time.Duration
	// WaitTimeSeconds is the longest long poll of one ReceiveMessage
	// (wait_time_seconds, 0..20). Receive returns after about a second
	// whatever this says, so a longer wait only matters to Get callers.
	WaitTimeSeconds int
	// PollingInterval separates rounds of short polls when several queues
	// are consumed on one channel (polling_interval, seconds).
	PollingInterval time.Duration
	// PredefinedQueues maps kombu queue names to existing queues
	// (predefined_queues, JSON: {"name": {"url": "..."}}). When set, only
	// these queues can be used.
	PredefinedQueues map[string]PredefinedQueue
	// CreationAttributes are extra attributes of every queue this
	// transport creates (sqs-creation-attributes, JSON object).
	CreationAttributes map[string]string
	// Base64 encodes message bodies in base64 as kombu does by default
	// (sqs_base64_encoding); false sends the envelope JSON as text.
	Base64 bool
}

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: sqs: %s", driver.ErrInvalidURL, fmt.Sprintf(format, args...))
}

// ParseURL parses sqs://[KEY:SECRET@][host[:port]][?options] (see the
// package documentation). It does no I/O. Errors wrap driver.ErrInvalidURL
// and never contain the secret key.
func ParseURL(u *url.URL) (*Options, error) {
	if u == nil {
		return nil, invalid("nil URL")
	}
	if !strings.EqualFold(u.Scheme, "sqs") {
		return nil, invalid("unsupported scheme %q", u.Scheme)
	}
	if u.Opaque != "" {
		return nil, invalid("the URL must have the form sqs://[KEY:SECRET@][host[:port]]")
	}
	o := &Options{
		Region:            DefaultRegion,
		VisibilityTimeout: DefaultVisibilityTimeout,
		WaitTimeSeconds:   DefaultWaitTimeSeconds,
		PollingInterval:   DefaultPollingInterval,
		Base64:            true,
	}
	if u.User != nil {
		o.AccessKeyID = u.User.Username()
		o.SecretAccessKey, _ = u.User.Password()
		if (o.AccessKeyID == "") != (o.SecretAccessKey == "") {
			return nil, invalid("the URL must hold both an access key id and a secret key (sqs://KEY:SECRET@), or neither")
		}
	}
	if p := strings.Trim(u.Path, "/"); p != "" {
		return nil, invalid("sqs:// takes no path, got %q", u.Path)
	}
	q, err := transport.NewQuery(u)
	if err != nil {
		return nil, err
	}
	q.SetTransport("sqs")
	secure := true
	var predefined, creation string
	q.String("region", &o.Region)
	q.String("endpoint_url", &o.EndpointURL)
	q.Bool("is_secure", &secure)
	q.String("queue_name_prefix", &o.QueueNamePrefix)
	q.Duration("visibility_timeout", &o.VisibilityTimeout)
	q.IntRange("wait_time_seconds", &o.WaitTimeSeconds, 0, maxWaitTimeSeconds)
	q.Duration("polling_interval", &o.PollingInterval)
	q.String("predefined_queues", &predefined)
	q.String("sqs-creation-attributes", &creation)
	q.Bool("sqs_base64_encoding", &o.Base64)
	if err := q.Err(); err != nil {
		return nil, err
	}
	if o.Region == "" {
		return nil, invalid("option region must not be empty")
	}
	if host := u.Hostname(); host != "" {
		if o.EndpointURL != "" {
			return nil, invalid("give the endpoint either as the URL's host or as endpoint_url, not both")
		}
		scheme := "https"
		if !secure {
			scheme = "http"
		}
		hp := host
		if strings.Contains(host, ":") {
			hp = "[" + host + "]"
		}
		if p := u.Port(); p != "" {
			n, err := strconv.Atoi(p)
			if err != nil || n <= 0 || n > 65535 {
				return nil, invalid("invalid port %q", p)
			}
			hp = net.JoinHostPort(host, p)
		}
		o.EndpointURL = scheme + "://" + hp
	} else if o.EndpointURL != "" {
		e, err := url.Parse(o.EndpointURL)
		if err != nil || (e.Scheme != "http" && e.Scheme != "https") || e.Host == "" || e.User != nil {
			return nil, invalid("option endpoint_url must be an http:// or https:// URL without user info")
		}
	}
	if o.VisibilityTimeout < time.Second || o.VisibilityTimeout > maxVisibilityTimeout {
		return nil, invalid("option visibility_timeout must be 1 s .. 12 h (SQS's range)")
	}
	if o.PollingInterval <= 0 {
		return nil, invalid("option polling_interval must be positive")
	}
	if predefined != "" {
		if err := strictJSON(predefined, &o.PredefinedQueues); err != nil {
			return nil, invalid("option predefined_queues: want a JSON object {\"name\": {\"url\": \"...\"}}: %v", err)
		}
	}
	if err := checkPredefined(o.PredefinedQueues); err != nil {
		return nil, err
	}
	if creation != "" {
		if err := strictJSON(creation, &o.CreationAttributes); err != nil {
			return nil, invalid("option sqs-creation-attributes: want a JSON object of strings: %v", err)
		}
	}
	return o, nil
}

// strictJSON decodes s into dst refusing unknown fields, so that a
// predefined queue with per-queue credentials (not supported) is an error
// rather than silently using the URL's.
func strictJSON(s string, dst any) error {
	d := json.NewDecoder(bytes.NewReader([]byte(s)))
	d.DisallowUnknownFields()
	if err := d.Decode(dst); err != nil {
		return err
	}
	if d.More() {
		return fmt.Errorf("trailing data")
	}
	return nil
}

func checkPredefined(m map[string]PredefinedQueue) error {
	for name, pq := range m {
		if err := driver.ValidateName("queue", name); err != nil {
			return invalid("predefined_queues: %v", err)
		}
		u, err := url.Parse(pq.URL)
		if pq.URL == "" || err != nil || u.Host == "" {
			return invalid("predefined_queues: queue %q needs a url", name)
		}
		if strings.HasSuffix(name, ".fifo") != strings.HasSuffix(u.Path, ".fifo") {
			return invalid("predefined_queues: queue %q and its url must agree on .fifo", name)
		}
		for n, secs := range pq.BackoffPolicy {
			if n < 1 || secs < 0 || time.Duration(secs)*time.Second > maxVisibilityTimeout {
				return invalid("predefined_queues: queue %q: backoff_policy %d: %d must map a count >= 1 to 0..43200 seconds", name, n, secs)
			}
		}
	}
	return nil
}
