package workertest_test

import (
	"bufio"
	"encoding/base64"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// aofHistory tells, for a failed fault test, what redis's append-only
// files record of the lost messages: every command that names one of them
// (by its base64 body) or one of their delivery tags, in the order redis
// applied them, so that a loss can be traced to the command that dropped
// the message.
func aofHistory(dir string, lost []string) string {
	if len(lost) == 0 {
		return ""
	}
	files, _ := filepath.Glob(filepath.Join(dir, "appendonlydir", "*.aof"))
	sort.Slice(files, func(i, j int) bool { return aofSeq(files[i]) < aofSeq(files[j]) })
	var cmds [][]string
	for _, f := range files {
		cs, err := readAOF(f)
		if err != nil {
			return fmt.Sprintf("\nAOF %s: %v", f, err)
		}
		cmds = append(cmds, cs...)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "\nAOF: %d files, %d commands", len(files), len(cmds))
	tagRe := regexp.MustCompile(`"delivery_tag": ?"([^"]+)"`)
	for _, id := range lost {
		body := base64.StdEncoding.EncodeToString([]byte(id))
		needles := []string{body}
		for _, c := range cmds {
			for _, a := range c {
				if strings.Contains(a, body) {
					for _, m := range tagRe.FindAllStringSubmatch(a, -1) {
						needles = append(needles, m[1])
					}
				}
			}
		}
		fmt.Fprintf(&b, "\n--- lost %s (body %s, tags %v):", id, body, needles[1:])
		for i, c := range cmds {
			line := strings.Join(c, " ")
			for _, n := range needles {
				if strings.Contains(line, n) {
					if len(line) > 300 {
						line = line[:300] + "..."
					}
					fmt.Fprintf(&b, "\n  #%d %s", i, line)
					break
				}
			}
		}
	}
	return b.String()
}

func aofSeq(name string) int {
	parts := strings.Split(filepath.Base(name), ".")
	for i := len(parts) - 1; i >= 0; i-- {
		if n, err := strconv.Atoi(parts[i]); err == nil {
			if strings.Contains(name, ".base.") {
				return n - 1_000_000
			}
			return n
		}
	}
	return 0
}

// readAOF parses an append-only file of RESP arrays (no RDB preamble:
// the tests' redis writes none without a rewrite).
func readAOF(name string) ([][]string, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	r := bufio.NewReader(f)
	var cmds [][]string
	for {
		line, err := r.ReadString('\n')
		if err == io.EOF {
			return cmds, nil
		}
		if err != nil {
			return cmds, err
		}
		if !strings.HasPrefix(line, "*") {
			return cmds, fmt.Errorf("unexpected %q after %d commands", line, len(cmds))
		}
		n, _ := strconv.Atoi(strings.TrimSpace(line[1:]))
		c := make([]string, 0, n)
		for i := 0; i < n; i++ {
			hdr, err := r.ReadString('\n')
			if err != nil {
				return cmds, nil // a truncated tail, as redis truncates it
			}
			size, _ := strconv.Atoi(strings.TrimSpace(hdr[1:]))
			buf := make([]byte, size+2)
			if _, err := io.ReadFull(r, buf); err != nil {
				return cmds, nil
			}
			c = append(c, string(buf[:size]))
		}
		cmds = append(cmds, c)
	}
}
