package codec

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"strconv"
	"strings"
	"unicode/utf8"
)

// jsonMarshal encodes v with encoding/json, without HTML escaping (Python's
// json.dumps does not escape <, > and &) and without a trailing newline.
func jsonMarshal(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte{'\n'}), nil
}

// jsonUnmarshal decodes one JSON document. The body must be UTF-8, as
// kombu's json.loads decodes it first. For *any, *map[string]any and
// *[]any, numbers become int64 when they are integer literals (uint64 or
// *big.Int when too large) and float64 otherwise, so Python ints survive.
// Other targets get encoding/json's usual behaviour.
func jsonUnmarshal(data []byte, v any) error {
	if !utf8.Valid(data) {
		return errInvalidUTF8
	}
	switch p := v.(type) {
	case *any:
		x, err := jsonDecodeAny(data)
		if err != nil {
			return err
		}
		*p = x
		return nil
	case *map[string]any:
		x, err := jsonDecodeAny(data)
		if err != nil {
			return err
		}
		switch m := x.(type) {
		case map[string]any:
			*p = m
		case nil:
			*p = nil
		default:
			return fmt.Errorf("json: cannot decode %s into map[string]any", jsonKind(x))
		}
		return nil
	case *[]any:
		x, err := jsonDecodeAny(data)
		if err != nil {
			return err
		}
		switch s := x.(type) {
		case []any:
			*p = s
		case nil:
			*p = nil
		default:
			return fmt.Errorf("json: cannot decode %s into []any", jsonKind(x))
		}
		return nil
	}
	return json.Unmarshal(data, v)
}

func jsonKind(x any) string {
	switch x.(type) {
	case map[string]any:
		return "object"
	case []any:
		return "array"
	case string:
		return "string"
	case bool:
		return "boolean"
	default:
		return "number"
	}
}

func jsonDecodeAny(data []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var x any
	if err := dec.Decode(&x); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, io.ErrUnexpectedEOF
		}
		return nil, err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, errors.New("json: extra data after the document")
	}
	return convertJSONNumbers(x)
}

// convertJSONNumbers replaces the json.Number values in x, in place.
func convertJSONNumbers(x any) (any, error) {
	switch t := x.(type) {
	case json.Number:
		return jsonNumber(string(t))
	case map[string]any:
		for k, e := range t {
			c, err := convertJSONNumbers(e)
			if err != nil {
				return nil, err
			}
			t[k] = c
		}
	case []any:
		for i, e := range t {
			c, err := convertJSONNumbers(e)
			if err != nil {
				return nil, err
			}
			t[i] = c
		}
	}
	return x, nil
}

func jsonNumber(s string) (any, error) {
	if strings.ContainsAny(s, ".eE") {
		f, err := strconv.ParseFloat(s, 64)
		if err != nil && !errors.Is(err, strconv.ErrRange) {
			return nil, err
		}
		// Out of range: ±Inf or 0, as Python's float() gives.
		return f, nil
	}
	if i, err := strconv.ParseInt(s, 10, 64); err == nil {
		return i, nil
	}
	if u, err := strconv.ParseUint(s, 10, 64); err == nil {
		return u, nil
	}
	b, ok := new(big.Int).SetString(s, 10)
	if !ok {
		return nil, fmt.Errorf("json: invalid number %q", s)
	}
	return b, nil
}
