package doccheck

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"go/ast"
	"go/doc/comment"
	"go/importer"
	"go/parser"
	"go/token"
	"go/types"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"
	"time"
)

const module = "github.com/kombu-go/kombu"

// placeholders are the free names a doc fragment may use without declaring
// them (a context, a test, a URL (u, url), parsed options, the package's
// Transport, a connection, a consumer, an observer, OpenTelemetry tracer and
// meter providers), besides names that start with "my" or "My" (openMyStore,
// myHandler: the reader's own code). Any other undefined name is an error.
var placeholders = map[string]bool{
	"ctx": true, "t": true, "u": true, "url": true, "opts": true, "Transport": true,
	"conn": true, "c": true, "obs": true, "tp": true, "mp": true,
}

func isPlaceholder(name string) bool {
	return placeholders[name] || strings.HasPrefix(name, "my") || strings.HasPrefix(name, "My") ||
		strings.Contains(name, "My")
}

func repoRoot(t *testing.T) string {
	t.Helper()
	dir, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "go.mod")); err != nil {
		t.Fatalf("no go.mod at %s", dir)
	}
	return dir
}

func goCmd() string { return filepath.Join(runtime.GOROOT(), "bin", "go") }

var goFence = regexp.MustCompile("(?ms)^```go\n(.*?)^```\n(?:\\s*```text\n(.*?)^```)?")

type mdBlock struct {
	file, code, output string
	line               int
}

func markdownBlocks(t *testing.T, root string) []mdBlock {
	files, _ := filepath.Glob(filepath.Join(root, "docs", "*.md"))
	files = append([]string{filepath.Join(root, "README.md")}, files...)
	var out []mdBlock
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range goFence.FindAllSubmatchIndex(b, -1) {
			blk := mdBlock{file: f, code: string(b[m[2]:m[3]]), line: 1 + bytes.Count(b[:m[0]], []byte("\n"))}
			if m[4] >= 0 {
				blk.output = string(b[m[4]:m[5]])
			}
			out = append(out, blk)
		}
	}
	return out
}

// Every ```go block of README.md and docs/*.md that starts with
// "package main" is a whole program that builds; a block followed by a
// ```text block prints exactly that when run (the README's example does).
// Other ```go blocks are fragments, type-checked as doc comments' are.
func TestMarkdownExamples(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the go command")
	}
	root := repoRoot(t)
	blocks := markdownBlocks(t, root)
	if len(blocks) == 0 {
		t.Fatal("no ```go block found in README.md: the README's example is gone")
	}
	tmp := t.TempDir()
	overlay := map[string]string{}
	var pkgs []string
	var fragments []codeBlock
	for i, b := range blocks {
		where := fmt.Sprintf("%s:%d", strings.TrimPrefix(b.file, root+"/"), b.line)
		if !strings.HasPrefix(strings.TrimSpace(stripComments(b.code)), "package main") {
			fragments = append(fragments, codeBlock{where: where, text: b.code})
			continue
		}
		src := filepath.Join(tmp, fmt.Sprintf("block%d.go", i))
		if err := os.WriteFile(src, []byte(b.code), 0o644); err != nil {
			t.Fatal(err)
		}
		dir := fmt.Sprintf("internal/doccheck/generated/block%d", i)
		overlay[filepath.Join(root, dir, "main.go")] = src
		pkgs = append(pkgs, "./"+dir)
	}
	if len(fragments) > 0 {
		fset := token.NewFileSet()
		imp := importer.ForCompiler(fset, "source", nil)
		for _, f := range fragments {
			if !checkFragment(t, fset, imp, f.where, strings.TrimSpace(f.text)) {
				t.Errorf("%s: a ```go block is neither a whole program nor a Go fragment", f.where)
			}
		}
	}
	ov := filepath.Join(tmp, "overlay.json")
	js, _ := json.Marshal(map[string]any{"Replace": overlay})
	if err := os.WriteFile(ov, js, 0o644); err != nil {
		t.Fatal(err)
	}
	run := func(ctx context.Context, args ...string) ([]byte, error) {
		cmd := exec.CommandContext(ctx, goCmd(), args...)
		cmd.Dir = root
		return cmd.CombinedOutput()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if out, err := run(ctx, append([]string{"build", "-o", os.DevNull, "-overlay", ov}, pkgs...)...); err != nil {
		t.Fatalf("go build of the markdown examples: %v\n%s", err, out)
	}
	for i, b := range blocks {
		if b.output == "" {
			continue
		}
		rctx, rcancel := context.WithTimeout(ctx, time.Minute)
		out, err := run(rctx, "run", "-overlay", ov, fmt.Sprintf("./internal/doccheck/generated/block%d", i))
		rcancel()
		if err != nil {
			t.Errorf("%s:%d: go run: %v\n%s", b.file, b.line, err, out)
			continue
		}
		if string(out) != b.output {
			t.Errorf("%s:%d printed\n%s\nthe doc says\n%s", b.file, b.line, out, b.output)
		}
	}
}

func stripComments(code string) string {
	var keep []string
	for _, l := range strings.Split(code, "\n") {
		if !strings.HasPrefix(strings.TrimSpace(l), "//") {
			keep = append(keep, l)
		}
	}
	return strings.Join(keep, "\n")
}

type codeBlock struct {
	where, text string
}

// docCommentBlocks returns the code blocks of every doc comment of the
// module's non-test Go files.
func docCommentBlocks(t *testing.T, root string) []codeBlock {
	var out []codeBlock
	var pr comment.Parser
	err := filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if p != root && (strings.HasPrefix(d.Name(), ".") || d.Name() == "testdata" || d.Name() == "node_modules") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(p, ".go") || strings.HasSuffix(p, "_test.go") {
			return nil
		}
		fset := token.NewFileSet()
		f, err := parser.ParseFile(fset, p, nil, parser.ParseComments)
		if err != nil {
			return err
		}
		var docs []*ast.CommentGroup
		ast.Inspect(f, func(n ast.Node) bool {
			switch d := n.(type) {
			case *ast.File:
				docs = append(docs, d.Doc)
			case *ast.FuncDecl:
				docs = append(docs, d.Doc)
			case *ast.GenDecl:
				docs = append(docs, d.Doc)
			case *ast.TypeSpec:
				docs = append(docs, d.Doc)
			case *ast.ValueSpec:
				docs = append(docs, d.Doc)
			case *ast.Field:
				docs = append(docs, d.Doc)
			}
			return true
		})
		for _, g := range docs {
			if g == nil {
				continue
			}
			for _, b := range pr.Parse(g.Text()).Content {
				if c, ok := b.(*comment.Code); ok {
					where := fmt.Sprintf("%s:%d", strings.TrimPrefix(p, root+"/"), fset.Position(g.Pos()).Line)
					out = append(out, codeBlock{where: where, text: c.Text})
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// importFor maps the package names doc fragments use to import paths.
var importFor = map[string]string{
	"context": "context", "time": "time", "testing": "testing", "url": "net/url", "fmt": "fmt",
	"errors": "errors", "log": "log",
	"kombu": module + "/kombu", "codec": module + "/kombu/codec", "driver": module + "/kombu/driver",
	"drivertest": module + "/kombu/drivertest", "transport": module + "/transport",
	"memory": module + "/transport/memory", "redis": module + "/transport/redis", "amqp": module + "/transport/amqp", "beanstalk": module + "/transport/beanstalk",
	"couchdb":  module + "/transport/couchdb",
	"sqs":      module + "/transport/sqs",
	"mongodb":  module + "/transport/mongodb",
	"postgres": module + "/transport/postgres", "sqlite": module + "/transport/sqlite",
	"virtual": module + "/virtual", "routing": module + "/virtual/routing", "storetest": module + "/virtual/storetest",
	"testenv": module + "/internal/testenv", "middleware": module + "/kombu/middleware",
	"otelkombu": module + "/kombu/otelkombu",
}

var (
	importLine = regexp.MustCompile(`^import\s+(?:[_.]|[A-Za-z_][A-Za-z0-9_]*)?\s*"([^"]+)"\s*$`)
	importSpec = regexp.MustCompile(`^(?:[_.]|[A-Za-z_][A-Za-z0-9_]*)?\s*"([^"]+)"\s*(?://.*)?$`)
)

// looksLikeGo tells a code fragment from a URL form or an options table.
var looksLikeGo = regexp.MustCompile(`:=|\bfunc\b|\bkombu\.|\breturn\b|\bif err\b`)

// Every code block in a doc comment compiles: import lines name real
// packages, and Go fragments type-check inside a function, with the
// placeholder names (ctx, t, u, opts, Transport) as the only free ones.
// Blocks that are not Go (URL forms, option tables) are left alone.
func TestDocCommentExamples(t *testing.T) {
	if testing.Short() {
		t.Skip("type-checks the module from source")
	}
	root := repoRoot(t)
	blocks := docCommentBlocks(t, root)
	fset := token.NewFileSet()
	imp := importer.ForCompiler(fset, "source", nil)
	checked := 0
	for _, b := range blocks {
		var imports, body []string
		inImports := false
		for _, l := range strings.Split(b.text, "\n") {
			tl := strings.TrimSpace(l)
			switch {
			case tl == "import (":
				inImports = true
			case inImports && tl == ")":
				inImports = false
			case inImports && importSpec.MatchString(tl):
				imports = append(imports, importSpec.FindStringSubmatch(tl)[1])
			case importLine.MatchString(tl):
				imports = append(imports, importLine.FindStringSubmatch(tl)[1])
			case !inImports:
				body = append(body, l)
			}
		}
		for _, p := range imports {
			if _, err := imp.Import(p); err != nil {
				t.Errorf("%s: import %q: %v", b.where, p, err)
			}
		}
		if checkFragment(t, fset, imp, b.where, strings.TrimSpace(strings.Join(body, "\n"))) {
			checked++
		}
	}
	if checked < 10 {
		t.Fatalf("only %d doc-comment examples checked: the extraction is broken", checked)
	}
	t.Logf("%d doc-comment code blocks, %d checked as Go", len(blocks), checked)
}

// parseFragment parses code as statements inside a function, or else as
// top-level declarations, adding imports for the package names it uses.
// checkFragment type-checks a Go fragment inside a function; placeholder
// names may stay undefined. It reports false for a block that is not Go.
func checkFragment(t *testing.T, fset *token.FileSet, imp types.Importer, where, code string) bool {
	t.Helper()
	if code == "" {
		return true
	}
	f, err := parseFragment(fset, code)
	if err != nil {
		if looksLikeGo.MatchString(code) {
			t.Errorf("%s: Go example does not parse: %v\n%s", where, err, code)
		}
		return false
	}
	var errs []string
	conf := types.Config{Importer: imp, Error: func(err error) {
		te := err.(types.Error)
		name, undefined := strings.CutPrefix(te.Msg, "undefined: ")
		if te.Soft || (undefined && isPlaceholder(name)) {
			return
		}
		errs = append(errs, te.Msg)
	}}
	_, _ = conf.Check("fragment", fset, []*ast.File{f}, nil)
	if len(errs) > 0 {
		t.Errorf("%s: example does not compile:\n\t%s\n%s", where, strings.Join(errs, "\n\t"), code)
	}
	return true
}

func parseFragment(fset *token.FileSet, code string) (*ast.File, error) {
	var used []string
	for name, path := range importFor {
		if regexp.MustCompile(`\b` + name + `\.`).MatchString(code) {
			used = append(used, fmt.Sprintf("%q", path))
		}
	}
	header := "package fragment\n"
	if len(used) > 0 {
		header += "import (\n" + strings.Join(used, "\n") + "\n)\n"
	}
	src := header + "func _() (_ any, _ error) {\n" + code + "\npanic(0)\n}\n"
	f, err := parser.ParseFile(fset, "fragment.go", src, 0)
	if err == nil {
		return f, nil
	}
	f, err2 := parser.ParseFile(fset, "fragment.go", header+code+"\n", 0)
	if err2 == nil {
		return f, nil
	}
	return nil, err
}
