// Package storagev1 is the generated gRPC code of version 1 of the storage
// plugin protocol (storage.proto beside it). Regenerate it with
// `go generate ./sdk/storage/storagev1` (or `make generate`); a test fails
// when the committed code differs from what protoc produces from the
// .proto, whenever protoc is installed. A later incompatible protocol gets a
// new package (storagev2) beside this one, as Terraform's tfplugin5 and
// tfplugin6 do.
package storagev1

//go:generate protoc --go_out=. --go_opt=paths=source_relative --go-grpc_out=. --go-grpc_opt=paths=source_relative storage.proto
