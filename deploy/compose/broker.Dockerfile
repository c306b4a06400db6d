# runnel-broker: the Kafka-protocol broker, with the storage plugins beside
# it (plugins/, found by --storage-plugin NAME). `make images` builds the
# static binaries into bin/images, the build context; FROM scratch pulls
# nothing.
FROM scratch
COPY --chown=65532:65532 rootfs/ /
COPY runnel /usr/local/bin/runnel
COPY runnel-broker /usr/local/bin/runnel-broker
COPY plugins/runnel-storage-file plugins/runnel-storage-memory /usr/local/bin/plugins/
USER 65532:65532
VOLUME /var/lib/runnel
EXPOSE 9092 9100
HEALTHCHECK --interval=2s --timeout=3s --start-period=60s CMD ["/usr/local/bin/runnel", "health", "kafka", "127.0.0.1:9092"]
ENTRYPOINT ["/usr/local/bin/runnel-broker"]
CMD ["--listen", "0.0.0.0:9092", "--metrics-listen", "0.0.0.0:9100", "--data-dir", "/var/lib/runnel"]
