module github.com/runnel-io/runnel/plugins

go 1.26.0

require github.com/runnel-io/runnel/sdk v0.0.0-00010101000000-000000000000

require github.com/twmb/franz-go/pkg/kmsg v1.15.1 // indirect

replace github.com/runnel-io/runnel/sdk => ../sdk
