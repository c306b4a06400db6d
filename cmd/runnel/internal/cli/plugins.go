package cli

import (
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/runnel-io/runnel/sdk/plugin"
)

func pluginsCmd(s Streams) *cobra.Command {
	c := &cobra.Command{
		Use:   "plugins",
		Short: "Inspect plugins (serializers)",
		Args:  cobra.ArbitraryArgs,
		RunE:  parentRun,
	}
	var sf serdeFlags
	list := &cobra.Command{
		Use:   "list",
		Short: "List the plugins found, with their versions and capabilities",
		Long: `List every serializer plugin found, in the order they are searched:
the folders of ` + plugin.PathEnv + ` (separated like PATH), the plugins folder
beside the runnel binary, then the built-ins. A plugin shadowed by an earlier
one of the same name is marked as such. Each plugin binary is asked to
describe itself (runnel-serde-NAME describe).`,
		Args: cobra.NoArgs,
		RunE: run(func(cmd *cobra.Command, _ []string) error {
			sf.mode = "auto"
			l, err := sf.loader()
			if err != nil {
				return err
			}
			w := tabwriter.NewWriter(s.Out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "KIND\tNAME\tVERSION\tSOURCE\tCAPABILITIES\tPATH")
			for _, li := range l.List(cmd.Context()) {
				version, caps := li.Info.Version, strings.Join(li.Info.Capabilities, ",")
				if li.Err != nil {
					version, caps = "?", "describe failed: "+oneLine(li.Err.Error())
				}
				src := string(li.Source)
				if li.Shadowed {
					src += " (shadowed)"
				}
				path := li.Path
				if path == "" {
					path = "-"
				}
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\n", li.Kind, li.Name, version, src, caps, path)
			}
			return w.Flush()
		}),
	}
	c.AddCommand(list)
	return c
}
