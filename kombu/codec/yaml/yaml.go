// Package yaml adds kombu's yaml serializer (application/x-yaml) to
// codec.Default and to every registry codec.NewRegistry makes. Import it
// for its side effect:
//
//	import _ "github.com/kombu-go/kombu/kombu/codec/yaml"
//
// Values are encoded with go.yaml.in/yaml/v3 (`yaml` struct tags; field
// names lower-cased without one). Only the first document of a body is
// read, as Python's yaml.safe_load does.
package yaml

import (
	"fmt"

	"github.com/kombu-go/kombu/kombu/codec"
	"go.yaml.in/yaml/v3"
)

// yamlMarshal encodes v with go.yaml.in/yaml/v3 (`yaml` struct tags).
func marshal(v any) (out []byte, err error) {
	defer func() {
		if p := recover(); p != nil {
			out, err = nil, fmt.Errorf("yaml: %v", p)
		}
	}()
	return yaml.Marshal(v)
}

// yamlUnmarshal decodes the first YAML document in data. For *any,
// *map[string]any and *[]any, integers become int64 (uint64 when too large
// for it), maps whose keys are all strings map[string]any, and other maps
// map[any]any, as Python's yaml.safe_load allows non-string keys.
func unmarshal(data []byte, v any) error {
	switch p := v.(type) {
	case *any:
		var x any
		if err := yaml.Unmarshal(data, &x); err != nil {
			return err
		}
		*p = normalizeYAML(x)
		return nil
	case *map[string]any:
		var x any
		if err := yaml.Unmarshal(data, &x); err != nil {
			return err
		}
		switch m := normalizeYAML(x).(type) {
		case map[string]any:
			*p = m
		case nil:
			*p = nil
		default:
			return fmt.Errorf("yaml: cannot decode %T into map[string]any", m)
		}
		return nil
	case *[]any:
		var x any
		if err := yaml.Unmarshal(data, &x); err != nil {
			return err
		}
		switch s := normalizeYAML(x).(type) {
		case []any:
			*p = s
		case nil:
			*p = nil
		default:
			return fmt.Errorf("yaml: cannot decode %T into []any", s)
		}
		return nil
	}
	return yaml.Unmarshal(data, v)
}

func normalizeYAML(x any) any {
	switch t := x.(type) {
	case int:
		return int64(t)
	case map[string]any:
		for k, e := range t {
			t[k] = normalizeYAML(e)
		}
		return t
	case map[any]any:
		allStrings := true
		for k, e := range t {
			t[k] = normalizeYAML(e)
			if _, ok := k.(string); !ok {
				allStrings = false
			}
		}
		if !allStrings {
			return t
		}
		m := make(map[string]any, len(t))
		for k, e := range t {
			m[k.(string)] = e
		}
		return m
	case []any:
		for i, e := range t {
			t[i] = normalizeYAML(e)
		}
		return t
	}
	return x
}

func init() {
	if err := codec.RegisterDefault(codec.Serializer{
		Name: "yaml", ContentType: codec.ContentTypeYAML, ContentEncoding: codec.EncodingUTF8,
		Marshal: marshal, Unmarshal: unmarshal,
	}); err != nil {
		panic(err)
	}
}
