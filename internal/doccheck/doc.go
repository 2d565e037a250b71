// Package doccheck holds the test that every Go example in the docs
// compiles: the ```go blocks of README.md and docs/*.md (whole programs;
// the README's first one is also run) and the code blocks of every doc
// comment in the module. It has no code of its own.
package doccheck
