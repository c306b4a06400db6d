// Package envflag lets every command-line flag also come from the
// environment: flag --data-dir reads RUNNEL_DATA_DIR when it is not given on
// the command line. Flags given explicitly always win.
package envflag

import (
	"fmt"
	"os"
	"strings"

	"github.com/spf13/pflag"
)

// Prefix is prepended to every variable name.
const Prefix = "RUNNEL_"

// Name returns the environment variable that feeds flag name.
func Name(flag string) string {
	return Prefix + strings.ToUpper(strings.NewReplacer("-", "_", ".", "_").Replace(flag))
}

// Apply sets every flag of fs that was not set on the command line from its
// environment variable, if present. It returns an error naming the variable
// when a value does not parse.
func Apply(fs *pflag.FlagSet) error {
	var err error
	fs.VisitAll(func(f *pflag.Flag) {
		if err != nil || f.Changed || f.Name == "help" {
			return
		}
		v, ok := os.LookupEnv(Name(f.Name))
		if !ok {
			return
		}
		if e := fs.Set(f.Name, v); e != nil {
			err = fmt.Errorf("%s=%q: %w", Name(f.Name), v, e)
		}
	})
	return err
}
