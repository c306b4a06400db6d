package cli

import (
	"cmp"
	"fmt"
	"net"
	"slices"
	"strconv"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"
)

func clusterCmd(s Streams) *cobra.Command {
	var k kafkaFlags
	c := &cobra.Command{
		Use:   "cluster",
		Short: "Show the cluster",
		RunE:  parentRun,
	}
	k.register(c.PersistentFlags())
	describe := &cobra.Command{
		Use:   "describe",
		Short: "Print the cluster id, the controller and the brokers",
		Example: `  runnel cluster describe
  runnel cluster describe --bootstrap-server kafka-1:9092`,
		Args: cobra.NoArgs,
		RunE: run(func(cmd *cobra.Command, _ []string) error {
			adm, ctx, done, err := k.adminSession(cmd.Context())
			if err != nil {
				return err
			}
			defer done()
			md, err := adm.BrokerMetadata(ctx)
			if err != nil {
				return fmt.Errorf("reading cluster metadata: %s", kafkaError(err))
			}
			controller := "none"
			if md.Controller >= 0 {
				controller = strconv.Itoa(int(md.Controller))
			}
			fmt.Fprintf(s.Out, "Cluster ID: %s\nController: %s\nBrokers: %d\n\n", orDash(md.Cluster), controller, len(md.Brokers))
			tw := tabwriter.NewWriter(s.Out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tHOST:PORT\tRACK")
			brokers := slices.Clone(md.Brokers)
			slices.SortFunc(brokers, func(a, b kadm.BrokerDetail) int { return cmp.Compare(a.NodeID, b.NodeID) })
			for _, b := range brokers {
				rack := "-"
				if b.Rack != nil && *b.Rack != "" {
					rack = *b.Rack
				}
				fmt.Fprintf(tw, "%d\t%s\t%s\n", b.NodeID, net.JoinHostPort(b.Host, strconv.Itoa(int(b.Port))), rack)
			}
			return tw.Flush()
		}),
	}
	c.AddCommand(describe)
	return c
}

// orDash shows an empty value as "-".
func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
