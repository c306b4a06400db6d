// Package compose holds the docker compose stack of the whole platform
// (docker-compose.yml and the Dockerfiles beside it) and its tests, which
// build the images, bring the stack up under a project name of their own
// and use it from the host as a person would: the runnel command line,
// kcat, a ZooKeeper client and lagmon's HTTP API, while containers are
// killed and brought back.
//
// The tests need Docker and docker-compose 1.29 (or `docker compose` v2)
// and kcat; they fail when CI=true and one is missing, and skip otherwise.
// The tests that need replication between brokers carry the build tag
// replication.
package compose
