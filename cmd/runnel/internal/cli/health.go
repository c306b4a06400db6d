package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// healthCmd probes one server and exits 0 when it serves, 1 when it does
// not. Container images have no shell, so their healthchecks run this
// (deploy/compose copies bin/runnel into every image).
func healthCmd(s Streams) *cobra.Command {
	var timeout time.Duration
	c := &cobra.Command{
		Use:   "health",
		Short: "Probe one server: exit 0 when it serves, 1 when it does not",
		Long: `health asks one server whether it is ready to serve and exits 0 when it is,
1 (with the reason on stderr) when it is not: a healthcheck for containers,
scripts and load balancers.`,
		RunE: parentRun,
	}
	c.PersistentFlags().DurationVar(&timeout, "timeout", 3*time.Second, "give up after this long")

	var brokerID int32
	kafka := &cobra.Command{
		Use:   "kafka HOST:PORT",
		Short: "A Kafka broker answers Metadata with a controller (and lists itself, with --broker-id)",
		Example: `  runnel health kafka 127.0.0.1:9092
  runnel health kafka 127.0.0.1:9092 --broker-id 1`,
		Args: cobra.ExactArgs(1),
		RunE: run(func(cmd *cobra.Command, args []string) error {
			ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
			defer cancel()
			msg, err := probeKafka(ctx, args[0], brokerID)
			if err != nil {
				return err
			}
			fmt.Fprintln(s.Out, msg)
			return nil
		}),
	}
	kafka.Flags().Int32Var(&brokerID, "broker-id", -1, "also require that the cluster lists this broker id (the probed broker's own)")

	zk := &cobra.Command{
		Use:     "zookeeper HOST:PORT",
		Short:   "A ZooKeeper server (or Runnel coordinator) serves reads and writes (four-letter word isro answers rw)",
		Example: `  runnel health zookeeper 127.0.0.1:2181`,
		Args:    cobra.ExactArgs(1),
		RunE: run(func(cmd *cobra.Command, args []string) error {
			ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
			defer cancel()
			if err := probeZooKeeper(ctx, args[0]); err != nil {
				return err
			}
			fmt.Fprintf(s.Out, "%s serves reads and writes\n", args[0])
			return nil
		}),
	}

	httpc := &cobra.Command{
		Use:   "http URL",
		Short: "An HTTP endpoint answers GET with a 2xx status",
		Example: `  runnel health http http://127.0.0.1:8000/burrow/admin/ready
  runnel health http http://127.0.0.1:8222/healthz`,
		Args: cobra.ExactArgs(1),
		RunE: run(func(cmd *cobra.Command, args []string) error {
			ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
			defer cancel()
			status, err := probeHTTP(ctx, args[0])
			if err != nil {
				return err
			}
			fmt.Fprintf(s.Out, "%s: %s\n", args[0], status)
			return nil
		}),
	}
	c.AddCommand(kafka, zk, httpc)
	return c
}

// probeKafka sends Metadata to the broker at addr itself (not to whichever
// broker the cluster would route to): healthy once it answers with a
// controller, and, when id >= 0, lists broker id among the live ones.
func probeKafka(ctx context.Context, addr string, id int32) (string, error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ClientID("runnel-health"), kgo.DialTimeout(connectTimeout))
	if err != nil {
		return "", usagef("%q: %v", addr, err)
	}
	defer cl.Close()
	seeds := cl.SeedBrokers()
	if len(seeds) == 0 {
		return "", usagef("%q: not a HOST:PORT", addr)
	}
	req := kmsg.NewPtrMetadataRequest()
	req.Topics = []kmsg.MetadataRequestTopic{} // none: only brokers and controller
	resp, err := seeds[0].Request(ctx, req)
	if err != nil {
		return "", fmt.Errorf("%s does not answer Metadata: %v", addr, err)
	}
	md := resp.(*kmsg.MetadataResponse)
	if md.ControllerID < 0 {
		return "", fmt.Errorf("%s answers but the cluster has no controller yet (is the coordinator up?)", addr)
	}
	if id >= 0 {
		found := false
		for _, b := range md.Brokers {
			found = found || b.NodeID == id
		}
		if !found {
			return "", fmt.Errorf("%s answers but broker %d is not registered in the cluster yet", addr, id)
		}
	}
	return fmt.Sprintf("%s serves: %d broker(s), controller %d", addr, len(md.Brokers), md.ControllerID), nil
}

// probeZooKeeper asks the server isro: "rw" means it serves writes (an
// ensemble member with a leader), "ro" that it is cut off from its quorum.
func probeZooKeeper(ctx context.Context, addr string) error {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("cannot reach %s: %v", addr, err)
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	if _, err := io.WriteString(conn, "isro"); err != nil {
		return fmt.Errorf("%s: %v", addr, err)
	}
	b, err := io.ReadAll(io.LimitReader(conn, 64))
	if err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("%s did not answer isro: %v", addr, err)
	}
	switch ans := strings.TrimSpace(string(b)); ans {
	case "rw":
		return nil
	case "ro":
		return fmt.Errorf("%s serves only reads: it has no quorum", addr)
	case "":
		return fmt.Errorf("%s closed the connection without answering isro (is it in 4lw.commands.whitelist?)", addr)
	default:
		return fmt.Errorf("%s answered isro with %q", addr, ans)
	}
}

// probeHTTP GETs url and wants a 2xx status.
func probeHTTP(ctx context.Context, url string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return "", usagef("%q: %v", url, err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", fmt.Errorf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
	if resp.StatusCode/100 != 2 {
		return "", fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return resp.Status, nil
}
