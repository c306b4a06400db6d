# runnel-coordinator: the ZooKeeper-compatible coordinator, one raft
# ensemble member per container. `make images` builds the static binaries
# into bin/images, the build context; FROM scratch pulls nothing.
FROM scratch
COPY --chown=65532:65532 rootfs/ /
COPY runnel /usr/local/bin/runnel
COPY runnel-coordinator /usr/local/bin/runnel-coordinator
USER 65532:65532
VOLUME /var/lib/runnel
EXPOSE 2181 2888 8080
HEALTHCHECK --interval=2s --timeout=3s --start-period=60s CMD ["/usr/local/bin/runnel", "health", "zookeeper", "127.0.0.1:2181"]
ENTRYPOINT ["/usr/local/bin/runnel-coordinator"]
CMD ["--listen", "0.0.0.0:2181", "--admin-listen", "0.0.0.0:8080", "--data-dir", "/var/lib/runnel"]
