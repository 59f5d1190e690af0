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
	if backend == BackendACL {
		return nil, "", fmt.Errorf("the acl backend runs Ascend OM models only; build a bundle with `mmadac build --target ascend` or use --backend ort or interp")
	}
	return nil, "", fmt.Errorf("unknown backend %q; use auto, acl, ort or interp", backend)
}
