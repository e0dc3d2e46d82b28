// Package nodecfg is the schema of a node's configuration file (YAML),
// its defaults and its validation. It is a leaf: it knows nothing of how a
// node runs. The zero value of every field means "use the default", so a
// file only needs the settings that differ; Validate names the field at
// fault and says what would be accepted.
package nodecfg
