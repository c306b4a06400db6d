package launch

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// ErrMissing means Apache ZooKeeper is not installed where launch looks for
// it. Tests treat it as a reason to skip, except under CI=true, where a
// missing peer must fail the run.
var ErrMissing = errors.New("launch: Apache ZooKeeper is not installed (install it with apt-get install -y zookeeper)")

// DefaultZooKeeperHome is where Debian's zookeeper package puts its scripts.
const DefaultZooKeeperHome = "/usr/share/zookeeper"

// Installation is a located ZooKeeper installation.
type Installation struct {
	// Home holds bin/zkServer.sh and bin/zkCli.sh.
	Home string
	// ServerScript and CLIScript are the paths of zkServer.sh and zkCli.sh.
	ServerScript, CLIScript string
	// classpath overrides the script's class path when not empty; see
	// debianClasspath.
	classpath string
}

// LocateZooKeeper finds a ZooKeeper installation: home if not empty, else
// $ZOOKEEPER_HOME, else DefaultZooKeeperHome. It returns an error wrapping
// ErrMissing when zkServer.sh or a java binary is absent.
func LocateZooKeeper(home string) (*Installation, error) {
	if home == "" {
		home = os.Getenv("ZOOKEEPER_HOME")
	}
	if home == "" {
		home = DefaultZooKeeperHome
	}
	inst := &Installation{
		Home:         home,
		ServerScript: filepath.Join(home, "bin", "zkServer.sh"),
		CLIScript:    filepath.Join(home, "bin", "zkCli.sh"),
	}
	for _, p := range []string{inst.ServerScript, inst.CLIScript} {
		if _, err := os.Stat(p); err != nil {
			return nil, fmt.Errorf("%w: %v", ErrMissing, err)
		}
	}
	if _, err := os.Stat("/usr/bin/java"); err != nil && os.Getenv("JAVA_HOME") == "" {
		return nil, fmt.Errorf("%w: no java (%v)", ErrMissing, err)
	}
	if home == DefaultZooKeeperHome {
		inst.classpath = debianClasspath()
	}
	return inst, nil
}

// debianClasspath returns the class path of Debian's zkEnv.sh plus
// slf4j-simple, or "" if those jars are missing. Debian's class path has no
// SLF4J binding, so the server would log nothing at all; with slf4j-simple
// its log reaches stderr and therefore our log file.
func debianClasspath() string {
	parts := []string{"/etc/zookeeper/conf", "/usr/share/java/zookeeper.jar", "/usr/share/java/slf4j-simple.jar"}
	for _, p := range parts[1:] {
		if _, err := os.Stat(p); err != nil {
			return ""
		}
	}
	return strings.Join(parts, ":")
}

// ZooKeeper starts a standalone Apache ZooKeeper on a free loopback port and
// waits until it serves.
func ZooKeeper(ctx context.Context, opts Options) (*Cluster, error) {
	return zooKeeper(ctx, 1, opts)
}

// ZooKeeperEnsemble starts an n-member Apache ZooKeeper ensemble on
// loopback (client, quorum and election ports all free) and waits until
// every member is a leader or a follower.
func ZooKeeperEnsemble(ctx context.Context, n int, opts Options) (*Cluster, error) {
	if n < 2 {
		return nil, fmt.Errorf("launch: a ZooKeeper ensemble needs at least 2 members, got %d", n)
	}
	return zooKeeper(ctx, n, opts)
}

func zooKeeper(ctx context.Context, n int, opts Options) (*Cluster, error) {
	inst, err := LocateZooKeeper(opts.ZooKeeperHome)
	if err != nil {
		return nil, err
	}
	opts = opts.withDefaults()
	return startCluster(ctx, opts, "zookeeper-", n, 3, func(dir string, ports [][]int) ([]*Member, error) {
		members := make([]*Member, n)
		for i := range members {
			id := i + 1
			m := &Member{
				ID:   id,
				Kind: KindZooKeeper,
				Addr: loopback(ports[i][0]),
				Dir:  filepath.Join(dir, fmt.Sprintf("zk%d", id)),
			}
			if n > 1 {
				m.PeerAddr = fmt.Sprintf("127.0.0.1:%d:%d", ports[i][1], ports[i][2])
			}
			members[i] = m
		}
		for _, m := range members {
			if err := writeZooKeeperFiles(m, members, opts); err != nil {
				return nil, err
			}
			m.LogPath = filepath.Join(m.Dir, "server.log")
			m.argv = []string{inst.ServerScript, "start-foreground", filepath.Join(m.Dir, "zoo.cfg")}
			m.env = zooKeeperEnv(inst, m, opts)
		}
		return members, nil
	})
}

// writeZooKeeperFiles writes a member's zoo.cfg and, in an ensemble, myid.
func writeZooKeeperFiles(m *Member, members []*Member, opts Options) error {
	data := filepath.Join(m.Dir, "data")
	if err := os.MkdirAll(data, 0o755); err != nil {
		return fmt.Errorf("launch: %w", err)
	}
	_, port, _ := strings.Cut(m.Addr, ":")
	var b strings.Builder
	fmt.Fprintf(&b, "tickTime=%d\n", opts.TickTime.Milliseconds())
	b.WriteString("initLimit=10\nsyncLimit=5\n")
	fmt.Fprintf(&b, "dataDir=%s\n", data)
	fmt.Fprintf(&b, "clientPort=%s\nclientPortAddress=127.0.0.1\n", port)
	b.WriteString("admin.enableServer=false\n")
	b.WriteString("4lw.commands.whitelist=*\n")
	// The default of 60 connections per address is less than the 64
	// sessions a benchmark opens from 127.0.0.1.
	b.WriteString("maxClientCnxns=0\n")
	if len(members) > 1 {
		for _, p := range members {
			fmt.Fprintf(&b, "server.%d=%s\n", p.ID, p.PeerAddr)
		}
		if err := os.WriteFile(filepath.Join(data, "myid"), []byte(strconv.Itoa(m.ID)+"\n"), 0o644); err != nil {
			return fmt.Errorf("launch: %w", err)
		}
	}
	if err := os.WriteFile(filepath.Join(m.Dir, "zoo.cfg"), []byte(b.String()), 0o644); err != nil {
		return fmt.Errorf("launch: %w", err)
	}
	return nil
}

// zooKeeperEnv is the environment zkServer.sh reads: JVM flags for the
// server, a log directory of our own, and no JMX.
func zooKeeperEnv(inst *Installation, m *Member, opts Options) []string {
	flags := []string{
		// TTL nodes exist only with extended types on.
		"-Dzookeeper.extendedTypesEnabled=true",
		"-Dorg.slf4j.simpleLogger.showDateTime=true",
	}
	if opts.ContainerCheckInterval > 0 {
		ms := max(opts.ContainerCheckInterval.Milliseconds(), 1)
		flags = append(flags, fmt.Sprintf("-Dznode.container.checkIntervalMs=%d", ms))
	}
	flags = append(flags, opts.JVMFlags...)
	env := []string{
		"SERVER_JVMFLAGS=" + strings.Join(flags, " "),
		"ZOO_LOG_DIR=" + m.Dir,
		"JMXDISABLE=true",
	}
	if inst.classpath != "" {
		// zkServer.sh puts JVMFLAGS after its own -cp, and the JVM takes
		// the last one.
		env = append(env, "JVMFLAGS=-cp "+inst.classpath)
	}
	return append(env, opts.Env...)
}
