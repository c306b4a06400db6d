module github.com/runnel-io/runnel/plugins

go 1.26.0

require github.com/runnel-io/runnel/sdk v0.0.0-00010101000000-000000000000

replace github.com/runnel-io/runnel/sdk => ../sdk
