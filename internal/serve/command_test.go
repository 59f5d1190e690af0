package serve

import (
	"context"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// freePort returns a loopback address that was free a moment ago.
func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

func TestCommandServesAndStops(t *testing.T) {
	addr := freePort(t)
	cmd := NewCommand()
	cmd.SetArgs([]string{"--model", "../../testdata/upstream-tiny/mmada", "--vq-model", "../../testdata/upstream-tiny/magvit", "--backend", "interp",
		"--listen", addr, "--max-queue", "3", "--t2i-text-length", "16", "--shutdown-timeout", "1s"})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- cmd.ExecuteContext(ctx) }()

	url := "http://" + addr
	waitFor(t, "the server to answer", func() bool {
		resp, err := http.Get(url + "/v1/health")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	resp, err := http.Get(url + "/v1/models")
	if err != nil {
		t.Fatal(err)
	}
	var info modelsInfo
	decodeBody(t, resp, &info)
	if info.Queue.MaxQueue != 3 || info.Queue.T2ITextLength != 16 || info.VQ == nil || info.Text.Backend != "interp" {
		t.Errorf("the flags did not reach the server: %+v %+v", info.Queue, info.Text)
	}

	cancel() // what SIGTERM does through signal.NotifyContext
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("serve returned %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("serve did not stop")
	}
	if _, err := http.Get(url + "/v1/health"); err == nil {
		t.Error("the server still answers after it stopped")
	}
}

func TestCommandErrors(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"zero queue", []string{"--max-queue", "0"}, "max queue must be at least 1"},
		{"zero batch", []string{"--max-batch", "0"}, "max batch must be at least 1"},
		{"address in use", []string{"--listen", ln.Addr().String()}, "--listen"},
		{"missing model", []string{"--model", "testdata/none"}, "testdata/none"},
		{"missing tokenizer", []string{"--tokenizer", "testdata/none/tokenizer.json"}, "tokenizer"},
		{"unknown backend", []string{"--backend", "tpu"}, "unknown backend"},
	} {
		cmd := NewCommand()
		args := append([]string{"--model", "../../testdata/upstream-tiny/mmada", "--vq-model", "../../testdata/upstream-tiny/magvit", "--backend", "interp", "--listen", "127.0.0.1:0"}, tc.args...)
		cmd.SetArgs(args)
		cmd.SilenceUsage, cmd.SilenceErrors = true, true
		err := cmd.ExecuteContext(context.Background())
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want one mentioning %q", tc.name, err, tc.want)
		}
	}
}
