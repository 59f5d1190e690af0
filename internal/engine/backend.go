package engine

import (
	"fmt"

	"github.com/mmadac/mmadac/ir"
	"github.com/mmadac/mmadac/runtime/interp"
)

type interpSession struct{ *interp.Session }

func (interpSession) Close() error { return nil }

// OpenSession opens the named backend for a graph and returns the session
// and the backend actually chosen ("auto" picks ort when its library
// loads, else interp).
func OpenSession(g *ir.Graph, backend string) (Session, string, error) {
	switch backend {
	case BackendInterp:
		s, err := interp.New(g)
		if err != nil {
			return nil, "", err
		}
		return interpSession{s}, BackendInterp, nil
	case BackendORT, BackendAuto, "":
		s, err := openORT(g)
		if err == nil {
			return s, BackendORT, nil
		}
		if backend == BackendORT {
			return nil, "", err
		}
		is, ierr := interp.New(g)
		if ierr != nil {
			return nil, "", ierr
		}
		return interpSession{is}, BackendInterp, nil
	}
	return nil, "", fmt.Errorf("unknown backend %q; use auto, interp or ort", backend)
}
