//go:build !cgo

package acl

import (
	"fmt"

	"github.com/mmadac/mmadac/ir"
)

// This file keeps the package's API when cgo is disabled
// (CGO_ENABLED=0), so that mmadac still builds. Load then always fails with
// ErrUnavailable, and no Lib or Session can exist.

// Lib is a loaded libascendcl.so; without cgo it cannot be created.
type Lib struct{}

// Session is a loaded OM model; without cgo it cannot be created.
type Session struct{}

// Load fails because a binary built without cgo cannot call C.
func Load(libPath string) (*Lib, error) {
	return nil, fmt.Errorf("%w: this binary was built with CGO_ENABLED=0, which cannot call "+
		"libascendcl.so; rebuild it with CGO_ENABLED=1 and a C compiler", ErrUnavailable)
}

// Path returns "".
func (l *Lib) Path() string { return "" }

// Open fails; see Load.
func (l *Lib) Open(modelPath string, deviceID int) (*Session, error) {
	return nil, fmt.Errorf("%w: built without cgo", ErrUnavailable)
}

// Run returns ErrClosed.
func (s *Session) Run(inputs map[string]*ir.Tensor) (map[string]*ir.Tensor, error) {
	return nil, ErrClosed
}

// Close does nothing.
func (s *Session) Close() error { return nil }

// Inputs returns nil.
func (s *Session) Inputs() []TensorInfo { return nil }

// Outputs returns nil.
func (s *Session) Outputs() []TensorInfo { return nil }

// Gears returns nil.
func (s *Session) Gears() [][]int64 { return nil }
