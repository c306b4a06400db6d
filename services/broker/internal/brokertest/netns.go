package brokertest

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"math/big"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// Lab is a private network of the test's own: a Linux bridge in the
// root network namespace with an address, and network namespaces attached
// to it, one per host, each with its own address on the bridge's /24.
// Servers started in a host's namespace (Host.Command) can be cut off from
// everything, the bridge's own address included, with Cut, and reconnected
// with Heal, while they keep running: a network partition.
//
// It needs root and iproute2 (and iptables, to let the bridge forward
// between its ports when the Docker engine's FORWARD policy drops bridged
// traffic). Everything it creates is removed when the test ends.
type Lab struct {
	t      testing.TB
	id     string
	bridge string
	subnet string // "10.A.B"
	// Addr is the bridge's address: servers in the root namespace that
	// the hosts reach (a coordinator) listen on it.
	Addr  string
	hosts int
}

// Host is one network namespace in a Lab.
type Host struct {
	lab  *Lab
	Name string // the namespace
	// Addr is the host's address on the lab's network.
	Addr string
	veth string // the root side of its link
}

// NewLab creates a lab or, when the machine cannot host one, calls Missing.
func NewLab(t testing.TB) *Lab {
	t.Helper()
	if os.Geteuid() != 0 {
		Missing(t, "network namespaces need root")
	}
	for _, tool := range []string{"ip", "iptables"} {
		if _, err := exec.LookPath(tool); err != nil {
			Missing(t, "%s (apt-get install -y iproute2 iptables): %v", tool, err)
		}
	}
	var b [3]byte
	_, _ = rand.Read(b[:])
	n, _ := rand.Int(rand.Reader, big.NewInt(200))
	l := &Lab{t: t, id: hex.EncodeToString(b[:]), subnet: fmt.Sprintf("10.%d.%d", 200+n.Int64()%50, b[2])}
	l.bridge = "rnb" + l.id
	l.Addr = l.subnet + ".1"
	t.Cleanup(l.remove)
	l.run("ip", "link", "add", l.bridge, "type", "bridge")
	l.run("ip", "addr", "add", l.Addr+"/24", "dev", l.bridge)
	l.run("ip", "link", "set", l.bridge, "up")
	// Docker's FORWARD policy drops bridged traffic that no rule accepts.
	l.run("iptables", "-I", "FORWARD", "-i", l.bridge, "-o", l.bridge, "-j", "ACCEPT")
	return l
}

func (l *Lab) run(argv ...string) {
	l.t.Helper()
	if out, err := exec.Command(argv[0], argv[1:]...).CombinedOutput(); err != nil {
		l.t.Fatalf("%s: %v\n%s", strings.Join(argv, " "), err, out)
	}
}

// Host adds a network namespace with the next address.
func (l *Lab) Host() *Host {
	l.t.Helper()
	l.hosts++
	h := &Host{lab: l, Name: fmt.Sprintf("rn%s-%d", l.id, l.hosts), Addr: fmt.Sprintf("%s.%d", l.subnet, 10+l.hosts),
		veth: fmt.Sprintf("rnh%s%d", l.id, l.hosts)}
	peer := fmt.Sprintf("rnp%s%d", l.id, l.hosts)
	l.run("ip", "netns", "add", h.Name)
	l.run("ip", "link", "add", h.veth, "type", "veth", "peer", "name", peer)
	l.run("ip", "link", "set", peer, "netns", h.Name)
	l.run("ip", "link", "set", h.veth, "master", l.bridge)
	l.run("ip", "link", "set", h.veth, "up")
	l.run("ip", "netns", "exec", h.Name, "ip", "link", "set", "lo", "up")
	l.run("ip", "netns", "exec", h.Name, "ip", "link", "set", peer, "name", "eth0")
	l.run("ip", "netns", "exec", h.Name, "ip", "addr", "add", h.Addr+"/24", "dev", "eth0")
	l.run("ip", "netns", "exec", h.Name, "ip", "link", "set", "eth0", "up")
	return h
}

// Command returns argv run inside the host's namespace.
func (h *Host) Command(argv ...string) []string {
	return append([]string{"ip", "netns", "exec", h.Name}, argv...)
}

// Cut disconnects the host from the lab: its link to the bridge goes down.
func (h *Host) Cut() { h.lab.run("ip", "link", "set", h.veth, "down") }

// Heal reconnects a cut host.
func (h *Host) Heal() { h.lab.run("ip", "link", "set", h.veth, "up") }

func (l *Lab) remove() {
	for i := 1; i <= l.hosts; i++ {
		_ = exec.Command("ip", "netns", "delete", fmt.Sprintf("rn%s-%d", l.id, i)).Run()
		_ = exec.Command("ip", "link", "delete", fmt.Sprintf("rnh%s%d", l.id, i)).Run()
	}
	_ = exec.Command("iptables", "-D", "FORWARD", "-i", l.bridge, "-o", l.bridge, "-j", "ACCEPT").Run()
	_ = exec.Command("ip", "link", "delete", l.bridge).Run()
}
