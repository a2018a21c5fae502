package function

import _ "embed"

// FuncYAML is this function's func.yaml, embedded so `dronetrack up` gives
// the function on one machine the settings it has on the cluster (the
// literal values of run.envs) without a checkout at hand.
//
//go:embed func.yaml
var FuncYAML []byte
