# nats-server, built from its Go module (github.com/nats-io/nats-server/v2,
# the version services/lagmon requires) as a static binary: the event bus
# between brokers and lagmon. `make images` builds it into bin/images, the
# build context; FROM scratch pulls nothing.
FROM scratch
COPY --chown=65532:65532 rootfs/ /
COPY runnel /usr/local/bin/runnel
COPY nats-server /usr/local/bin/nats-server
USER 65532:65532
EXPOSE 4222 8222
HEALTHCHECK --interval=2s --timeout=3s --start-period=30s CMD ["/usr/local/bin/runnel", "health", "http", "http://127.0.0.1:8222/healthz"]
ENTRYPOINT ["/usr/local/bin/nats-server"]
CMD ["--port", "4222", "--http_port", "8222"]
