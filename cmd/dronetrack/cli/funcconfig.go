package cli

import (
	"flag"

	"github.com/dronetrack/dronetrack/infra/local"
)

// registerSetFlag adds --set to up's flags.
func registerSetFlag(fs *flag.FlagSet, s *local.SetFlags) {
	fs.Var(s, "set", "FUNCTION.SETTING=VALUE: one function's setting, over its func.yaml and the environment (repeatable; every setting in docs/configuration.md)")
}
