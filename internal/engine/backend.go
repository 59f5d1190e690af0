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
// loads and the weights fit inline, else interp).
func OpenSession(g *ir.Graph, backend string) (Session, string, error) {
	name, err := chooseBackend(g, backend, "")
	if err != nil {
		return nil, "", err
	}
	if name == BackendORT {
		s, err := openORT(g)
		if err == nil {
			return s, BackendORT, nil
		}
		if backend == BackendORT {
			return nil, "", err
		}
	}
	s, err := interp.New(g)
	if err != nil {
		return nil, "", err
	}
	return interpSession{s}, BackendInterp, nil
}

// chooseBackend returns the backend OpenSession would pick for g, without
// opening a session. dir is the folder whose files ONNX Runtime may read
// the weights from in place (see weightRefs); empty puts them inline.
func chooseBackend(g *ir.Graph, backend, dir string) (string, error) {
	switch backend {
	case BackendInterp:
		return BackendInterp, nil
	case BackendORT, BackendAuto, "":
		err := ortUsable(g, dir)
		if err == nil {
			return BackendORT, nil
		}
		if backend == BackendORT {
			return "", err
		}
		return BackendInterp, nil
	case BackendACL:
		return "", fmt.Errorf("the acl backend runs Ascend OM models only; build a bundle with `mmadac build --target ascend` or use --backend ort or interp")
	}
	return "", fmt.Errorf("unknown backend %q; use auto, acl, ort or interp", backend)
}
