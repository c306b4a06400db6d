package compose

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Bounds of the waits: every one of them fails the test when it passes.
const (
	buildTimeout   = 10 * time.Minute // make images, cold: the static builds
	upTimeout      = 3 * time.Minute  // compose up waits for the healthchecks
	healthyTimeout = 2 * time.Minute
	commandTimeout = 90 * time.Second // one kcat, runnel or docker command
	downTimeout    = 2 * time.Minute
)

// services are the stack's containers (the observability profile's are
// never started here).
var services = []string{"coordinator-1", "coordinator-2", "coordinator-3", "broker-1", "broker-2", "broker-3", "lagmon", "nats"}

// need fails the test under CI and skips it elsewhere: a peer the test
// cannot do without is missing.
func need(t *testing.T, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

// repoRoot is the repository's top folder (this package is deploy/compose).
func repoRoot(t *testing.T) string {
	t.Helper()
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("cannot locate the test's source file")
	}
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

// composeCommand returns how to run compose here: `docker compose` (v2)
// when the plugin answers, else docker-compose (1.29).
func composeCommand(t *testing.T) []string {
	t.Helper()
	if _, err := exec.LookPath("docker"); err != nil {
		need(t, "the compose tests need the docker command and a running engine: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if out, err := exec.CommandContext(ctx, "docker", "info", "--format", "{{.ServerVersion}}").CombinedOutput(); err != nil {
		need(t, "the Docker engine does not answer (docker info: %v: %s)", err, bytes.TrimSpace(out))
	}
	if v := os.Getenv("RUNNEL_COMPOSE"); v != "" {
		return strings.Fields(v)
	}
	if exec.CommandContext(ctx, "docker", "compose", "version").Run() == nil {
		return []string{"docker", "compose"}
	}
	if _, err := exec.LookPath("docker-compose"); err == nil {
		return []string{"docker-compose"}
	}
	need(t, "neither `docker compose` nor docker-compose is installed (apt-get install docker-compose)")
	return nil
}

var (
	buildOnce sync.Once
	buildErr  error
	buildTag  string
)

// images builds the images once per test process, under a tag of this
// process, and untags them when the process's tests are done (see
// TestMain).
func images(t *testing.T, root string) string {
	t.Helper()
	buildOnce.Do(func() {
		buildTag = fmt.Sprintf("test-%d-%d", os.Getpid(), time.Now().Unix())
		ctx, cancel := context.WithTimeout(context.Background(), buildTimeout)
		defer cancel()
		cmd := exec.CommandContext(ctx, "make", "-C", root, "images", "IMAGE_TAG="+buildTag)
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Run(); err != nil {
			buildErr = fmt.Errorf("make images: %v\n%s", err, tail(out.String(), 4000))
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return buildTag
}

func TestMain(m *testing.M) {
	code := m.Run()
	if buildTag != "" {
		for _, img := range []string{"coordinator", "broker", "lagmon", "nats"} {
			_ = exec.Command("docker", "rmi", "runnel-"+img+":"+buildTag).Run()
		}
	}
	os.Exit(code)
}

// stack is one running copy of docker-compose.yml under its own project
// name, subnet and host ports.
type stack struct {
	t       *testing.T
	root    string
	compose []string
	project string
	env     []string

	subnet      string // first three octets
	brokerPorts [3]int
	coordPorts  [3]int
	lagmonPort  int

	ids map[string]string // service → container id
}

// startStack brings a new stack up and waits until every container is
// healthy. Everything it made (containers, volumes, network) goes when the
// test ends, whatever its outcome; a failed test first gets the logs.
func startStack(t *testing.T) *stack {
	t.Helper()
	compose := composeCommand(t)
	if _, err := exec.LookPath("kcat"); err != nil {
		need(t, "the compose tests need kcat (apt-get install kcat): %v", err)
	}
	root := repoRoot(t)
	tag := images(t, root)
	s := &stack{t: t, root: root, compose: compose, ids: map[string]string{}}
	s.project = fmt.Sprintf("runneltest%d%04d", os.Getpid(), rand.IntN(10000))
	s.subnet = freeSubnet(t)
	ports := freePorts(t, 7)
	copy(s.brokerPorts[:], ports[0:3])
	copy(s.coordPorts[:], ports[3:6])
	s.lagmonPort = ports[6]
	s.env = append(os.Environ(),
		"RUNNEL_TAG="+tag,
		"RUNNEL_SUBNET="+s.subnet,
		"COMPOSE_PROJECT_NAME="+s.project,
	)
	for i := range 3 {
		s.env = append(s.env,
			fmt.Sprintf("RUNNEL_BROKER_%d_PORT=%d", i+1, s.brokerPorts[i]),
			fmt.Sprintf("RUNNEL_COORDINATOR_%d_PORT=%d", i+1, s.coordPorts[i]))
	}
	s.env = append(s.env, fmt.Sprintf("RUNNEL_LAGMON_PORT=%d", s.lagmonPort))
	t.Cleanup(s.down)
	t.Logf("project %s with %s, subnet %s.0/24, brokers on %v", s.project, strings.Join(compose, " "), s.subnet, s.brokerPorts)
	if out, err := s.composeRun(upTimeout, "up", "-d"); err != nil {
		t.Fatalf("compose up: %v\n%s", err, out)
	}
	for _, svc := range services {
		out, err := s.composeRun(commandTimeout, "ps", "-q", svc)
		id := strings.TrimSpace(out)
		if err != nil || id == "" {
			t.Fatalf("compose ps -q %s: %v %q", svc, err, out)
		}
		s.ids[svc] = id
	}
	for _, svc := range services {
		s.waitHealthy(svc)
	}
	return s
}

// down removes the stack, its volumes and its network, after printing the
// logs of a failed test.
func (s *stack) down() {
	if s.t.Failed() {
		out, _ := s.composeRun(commandTimeout, "logs", "--no-color", "--tail", "60")
		s.t.Logf("compose logs:\n%s", tail(out, 30000))
	}
	if out, err := s.composeRun(downTimeout, "down", "-v", "--remove-orphans", "--timeout", "10"); err != nil {
		s.t.Errorf("compose down: %v\n%s", err, out)
	}
}

// composeRun runs a compose subcommand of this stack.
func (s *stack) composeRun(timeout time.Duration, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	full := append(append([]string{}, s.compose[1:]...), "-p", s.project, "-f", filepath.Join(s.root, "deploy", "compose", "docker-compose.yml"))
	cmd := exec.CommandContext(ctx, s.compose[0], append(full, args...)...)
	cmd.Env = s.env
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// docker runs a docker command, bounded.
func (s *stack) docker(args ...string) string {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), commandTimeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, "docker", args...).CombinedOutput()
	if err != nil {
		s.t.Fatalf("docker %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

// health is a container's health status ("starting", "healthy",
// "unhealthy") or its state when it is not running.
func (s *stack) health(svc string) string {
	s.t.Helper()
	out := s.docker("inspect", "--format", "{{.State.Status}} {{if .State.Health}}{{.State.Health.Status}}{{end}}", s.ids[svc])
	state, h, _ := strings.Cut(out, " ")
	if state != "running" {
		return state
	}
	return h
}

func (s *stack) waitHealthy(svc string) {
	s.t.Helper()
	deadline := time.Now().Add(healthyTimeout)
	for {
		h := s.health(svc)
		if h == "healthy" {
			return
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("%s is %q after %v", svc, h, healthyTimeout)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// kill ends a service's container with SIGKILL, as a crash would; start
// brings it back (same container, same volume) and waits until it is
// healthy.
func (s *stack) kill(svc string) { s.t.Helper(); s.docker("kill", s.ids[svc]) }
func (s *stack) start(svc string) {
	s.t.Helper()
	s.docker("start", s.ids[svc])
	s.waitHealthy(svc)
}

// bootstrap is the host's bootstrap address of broker i (1-3).
func (s *stack) bootstrap(i int) string { return fmt.Sprintf("127.0.0.1:%d", s.brokerPorts[i-1]) }

// coordinator is the host address of coordinator i (1-3).
func (s *stack) coordinator(i int) string { return fmt.Sprintf("127.0.0.1:%d", s.coordPorts[i-1]) }

func (s *stack) lagmon(path string) string {
	return fmt.Sprintf("http://127.0.0.1:%d%s", s.lagmonPort, path)
}

// run runs a program of the host with stdin, bounded; it fails the test
// unless the program exits 0.
func (s *stack) run(stdin string, name string, args ...string) string {
	s.t.Helper()
	out, stderr, err := s.try(stdin, name, args...)
	if err != nil {
		s.t.Fatalf("%s %s: %v\nstdout:\n%s\nstderr:\n%s", name, strings.Join(args, " "), err, tail(out, 4000), tail(stderr, 4000))
	}
	return out
}

func (s *stack) try(stdin string, name string, args ...string) (string, string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), commandTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	return out.String(), errb.String(), err
}

// runnel runs bin/runnel (built by make build, which make test runs first).
func (s *stack) runnel(stdin string, args ...string) string {
	s.t.Helper()
	return s.run(stdin, s.runnelBin(), args...)
}

func (s *stack) runnelBin() string {
	bin := filepath.Join(s.root, "bin", "runnel")
	if _, err := os.Stat(bin); err != nil {
		s.t.Fatalf("%s is missing: run make build first (make test does)", bin)
	}
	return bin
}

// fourLetter asks coordinator i a four-letter word.
func (s *stack) fourLetter(i int, word string) (string, error) {
	c, err := net.DialTimeout("tcp", s.coordinator(i), 5*time.Second)
	if err != nil {
		return "", err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c, word); err != nil {
		return "", err
	}
	b, err := io.ReadAll(c)
	return string(b), err
}

// coordinatorLeader returns the coordinator (1-3) whose srvr says it leads
// the raft ensemble, skipping skip, waiting for an election if need be.
func (s *stack) coordinatorLeader(skip int) int {
	s.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		for i := 1; i <= 3; i++ {
			if i == skip {
				continue
			}
			if out, err := s.fourLetter(i, "srvr"); err == nil && strings.Contains(out, "Mode: leader\n") {
				return i
			}
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("no coordinator reports Mode: leader (skipping %d)", skip)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// getText GETs url, wanting 200.
func getText(url string) (string, error) {
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("GET %s: %s: %s", url, resp.Status, bytes.TrimSpace(body))
	}
	return string(body), nil
}

// getJSON GETs url into v, wanting 200.
func getJSON(url string, v any) error {
	body, err := getText(url)
	if err != nil {
		return err
	}
	return json.Unmarshal([]byte(body), v)
}

// freePorts returns n host ports that were free on 127.0.0.1 a moment ago.
func freePorts(t *testing.T, n int) []int {
	t.Helper()
	var out []int
	var lns []net.Listener
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		lns = append(lns, ln)
		out = append(out, ln.Addr().(*net.TCPAddr).Port)
	}
	for _, ln := range lns {
		ln.Close()
	}
	return out
}

// freeSubnet picks a 172.28.X.0/24 that no Docker network uses yet.
func freeSubnet(t *testing.T) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), commandTimeout)
	defer cancel()
	ids, err := exec.CommandContext(ctx, "docker", "network", "ls", "-q").Output()
	if err != nil {
		t.Fatalf("docker network ls: %v", err)
	}
	var used []*net.IPNet
	if f := strings.Fields(string(ids)); len(f) > 0 {
		out, err := exec.CommandContext(ctx, "docker", append([]string{"network", "inspect", "--format", "{{range .IPAM.Config}}{{.Subnet}} {{end}}"}, f...)...).Output()
		if err != nil {
			t.Fatalf("docker network inspect: %v", err)
		}
		for _, sn := range strings.Fields(string(out)) {
			if _, n, err := net.ParseCIDR(sn); err == nil {
				used = append(used, n)
			}
		}
	}
	start := rand.IntN(150)
	for k := range 150 {
		prefix := "172.28." + strconv.Itoa(100+(start+k)%150)
		_, mine, _ := net.ParseCIDR(prefix + ".0/24")
		clash := false
		for _, n := range used {
			clash = clash || n.Contains(mine.IP) || mine.Contains(n.IP)
		}
		if !clash {
			return prefix
		}
	}
	t.Fatal("no free 172.28.X.0/24 subnet for the stack")
	return ""
}

func tail(s string, n int) string {
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
}
