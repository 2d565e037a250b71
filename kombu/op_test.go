package kombu_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// Every Error.Op the package writes reads "type.method" in kombu's
// snake_case ("queue.declare", "producer.publish"), so that logs and
// error checks meet one vocabulary.
func TestErrorOpVocabulary(t *testing.T) {
	files, _ := filepath.Glob("*.go")
	valid := regexp.MustCompile(`^[a-z]+(_[a-z]+)*\.[a-z]+(_[a-z]+)*$`)
	seen := 0
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		fset := token.NewFileSet()
		file, err := parser.ParseFile(fset, f, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(file, func(n ast.Node) bool {
			var lit *ast.BasicLit
			switch x := n.(type) {
			case *ast.KeyValueExpr: // Error{Op: "..."}
				if id, ok := x.Key.(*ast.Ident); ok && id.Name == "Op" {
					lit, _ = x.Value.(*ast.BasicLit)
				}
			case *ast.CallExpr: // wrapErr("...", ...)
				if id, ok := x.Fun.(*ast.Ident); ok && id.Name == "wrapErr" && len(x.Args) > 0 {
					lit, _ = x.Args[0].(*ast.BasicLit)
				}
			}
			if lit != nil && lit.Kind == token.STRING {
				op, _ := strconv.Unquote(lit.Value)
				seen++
				if !valid.MatchString(op) {
					t.Errorf("%s: Op %q is not type.method", fset.Position(lit.Pos()), op)
				}
			}
			return true
		})
	}
	if seen < 20 {
		t.Fatalf("found only %d Op values: the scan is broken", seen)
	}
}
