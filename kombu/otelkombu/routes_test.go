package otelkombu

import (
	"errors"
	"fmt"
	"testing"

	"go.opentelemetry.io/otel/metric"

	"github.com/kombu-go/kombu/kombu"
)

// Routes are built once per (transport, destination), up to maxRoutes;
// past it they are still right, only built per call.
func TestRouteCache(t *testing.T) {
	var c routeCache
	first := c.get("amqp", "orders")
	if c.get("amqp", "orders") != first {
		t.Error("a second lookup built the route again")
	}
	if c.get("redis", "orders") == first {
		t.Error("two transports share a route")
	}
	if first.publishName != "publish orders" || first.processName != "process orders" || first.system != "rabbitmq" {
		t.Errorf("route %+v", first)
	}
	for i := 0; len(*c.routes.Load()) < maxRoutes; i++ {
		c.get("memory", fmt.Sprint("q", i))
	}
	over := c.get("memory", "one-too-many")
	if len(*c.routes.Load()) != maxRoutes || over.publishName != "publish one-too-many" {
		t.Errorf("%d routes cached, want %d; route past the bound %q", len(*c.routes.Load()), maxRoutes, over.publishName)
	}
	if anon := c.get("memory", ""); anon.publishName != "publish" || len(anon.publishAttrs) != 5 {
		t.Errorf("anonymous destination: span %q, %d constant attributes, want publish and 5", anon.publishName, len(anon.publishAttrs))
	}
}

// A failed duration carries error.type, built once per type.
func TestFailedDurationAttributes(t *testing.T) {
	r := newRoute("redis", "q")
	opts := r.timed(opProcess, fmt.Errorf("wrapped: %w", kombu.ErrTimeout))
	set := metric.NewRecordConfig(opts).Attributes()
	if v, _ := set.Value("error.type"); v.AsString() != "timeout" {
		t.Errorf("error.type %q, want timeout", v.AsString())
	}
	if v, _ := set.Value("messaging.operation.name"); v.AsString() != "process" {
		t.Errorf("operation %q, want process", v.AsString())
	}
	again := r.timed(opProcess, errors.Join(kombu.ErrTimeout))
	if &again[0] != &opts[0] {
		t.Error("the failed attribute set was built again")
	}
	other := metric.NewRecordConfig(r.timed(opPublish, errors.New("x"))).Attributes()
	if v, _ := other.Value("error.type"); v.AsString() != "_OTHER" {
		t.Errorf("error.type %q, want _OTHER", v.AsString())
	}
	ok := metric.NewRecordConfig(r.timed(opPublish, nil)).Attributes()
	if _, found := ok.Value("error.type"); found {
		t.Error("a success carries error.type")
	}
}
