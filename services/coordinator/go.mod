module github.com/runnel-io/runnel/services/coordinator

go 1.26

require github.com/runnel-io/runnel v0.0.0-00010101000000-000000000000

replace github.com/runnel-io/runnel => ../..
