// Package serdev1 is the generated gRPC code of version 1 of the serializer
// plugin protocol (serde.proto beside it). Regenerate it with
// `make generate`; `make check-generate` fails when the committed code
// differs from what the .proto produces. A later incompatible protocol gets
// a new package (serdev2) beside this one, as Terraform's tfplugin5 and
// tfplugin6 do.
package serdev1
