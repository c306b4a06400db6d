# runnel-lagmon: the Burrow-compatible lag monitor. `make images` builds the
# static binaries into bin/images, the build context; FROM scratch pulls
# nothing. Mount a configuration at /etc/runnel/lagmon.toml.
FROM scratch
COPY --chown=65532:65532 rootfs/ /
COPY runnel /usr/local/bin/runnel
COPY runnel-lagmon /usr/local/bin/runnel-lagmon
USER 65532:65532
EXPOSE 8000
HEALTHCHECK --interval=2s --timeout=3s --start-period=60s CMD ["/usr/local/bin/runnel", "health", "http", "http://127.0.0.1:8000/burrow/admin/ready"]
ENTRYPOINT ["/usr/local/bin/runnel-lagmon"]
CMD ["--listen", "0.0.0.0:8000", "--config", "/etc/runnel/lagmon.toml"]
