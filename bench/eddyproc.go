package bench

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/eddybroker/eddy/sdk"
)

// linkedEddyTarget runs one eddy node as its own process (`eddy serve`) in
// the server namespace of a lossy link; the clients, in this process, sit
// in the client namespace and reach it across the link.
type linkedEddyTarget struct {
	eddyTarget
	exe      string // the eddy binary
	serverNS string
}

// brokerProcess is a broker running as a child process.
type brokerProcess struct {
	cmd  *exec.Cmd
	done chan error
}

func (t linkedEddyTarget) Start(ctx context.Context, w Workload, dir string) (Instance, error) {
	if w.Nodes() != 1 {
		return nil, errors.New("a workload with a link runs one eddy node (replication 1)")
	}
	data := filepath.Join(dir, "node1")
	quicAddr := net.JoinHostPort(LinkServerIP, "9092")
	kafkaAddr := net.JoinHostPort(LinkServerIP, "9093")
	// The namespace is a lab of its own: a plaintext Kafka listener on the
	// link's address is what the test needs (insecure).
	cfg := fmt.Sprintf("data_dir: %s\ninsecure: true\nlisten:\n  quic: %s\n  kafka: %s\n  admin: 127.0.0.1:9644\n  raft: 127.0.0.1:7100\n",
		strconv.Quote(data), quicAddr, kafkaAddr)
	cfgFile := filepath.Join(dir, "eddy.yaml")
	if err := os.WriteFile(cfgFile, []byte(cfg), 0o644); err != nil {
		return nil, err
	}
	logFile, err := os.Create(filepath.Join(dir, "eddy.log"))
	if err != nil {
		return nil, err
	}
	cmd := exec.Command("ip", "netns", "exec", t.serverNS, t.exe, "serve", "--config", cfgFile, "--log-format", "json", "--log-level", "warn")
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return nil, fmt.Errorf("start eddy serve in %s: %w", t.serverNS, err)
	}
	proc := &brokerProcess{cmd: cmd, done: make(chan error, 1)}
	go func() { proc.done <- cmd.Wait() }()
	inst := &eddyInstance{target: t.eddyTarget, proc: proc, log: logFile}
	if t.transport == sdk.QUIC {
		inst.seeds = []string{quicAddr}
	} else {
		inst.seeds = []string{kafkaAddr}
	}
	// Wait for the node's CA, then for the broker to answer across the link.
	deadline := time.Now().Add(60 * time.Second)
	for {
		select {
		case err := <-proc.done:
			logFile.Close()
			log, _ := os.ReadFile(logFile.Name())
			return nil, fmt.Errorf("eddy serve exited (%v): %s", err, tail(string(log), 2000))
		default:
		}
		if pem, err := os.ReadFile(filepath.Join(data, "tls", "ca.crt")); err == nil {
			inst.pool = x509.NewCertPool()
			if inst.pool.AppendCertsFromPEM(pem) {
				dctx, cancel := context.WithTimeout(ctx, 5*time.Second)
				inst.client, err = inst.dial(dctx)
				cancel()
				if err == nil {
					return inst, nil
				}
			}
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			inst.Close()
			return nil, fmt.Errorf("eddy in namespace %s did not answer on %s within a minute", t.serverNS, inst.seeds[0])
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// cpuSeconds is the process's CPU time so far, from /proc/PID/stat.
func (p *brokerProcess) cpuSeconds() float64 {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p.cmd.Process.Pid))
	if err != nil {
		return 0
	}
	// Fields after the command name, which is in parentheses.
	s := string(data)
	if i := strings.LastIndexByte(s, ')'); i >= 0 {
		s = s[i+1:]
	}
	f := strings.Fields(s)
	if len(f) < 13 {
		return 0
	}
	utime, _ := strconv.ParseFloat(f[11], 64)
	stime, _ := strconv.ParseFloat(f[12], 64)
	return (utime + stime) / 100 // USER_HZ
}

func (p *brokerProcess) stop() {
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(15 * time.Second):
		p.cmd.Process.Kill()
		<-p.done
	}
}

// extraCPUSeconds counts the broker's process when it is not this one.
func (e *eddyInstance) extraCPUSeconds() float64 {
	if e.proc == nil {
		return 0
	}
	return e.proc.cpuSeconds()
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}
