package engine

import (
	"fmt"

	"github.com/mmadac/mmadac/ir"
)

// openORT is replaced once the ONNX emitter lands.
func openORT(g *ir.Graph) (Session, error) {
	return nil, fmt.Errorf("ort backend not wired yet")
}

func openORTCheck() (Session, error) { return nil, fmt.Errorf("ort backend not wired yet") }
