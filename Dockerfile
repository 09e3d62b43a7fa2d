# kpool's programs in one image: kpool-worker (the entrypoint), kpool and
# kpool-stub-llm. docker-compose.yml runs Kafka and a fleet from it.
#
#   docker build -t kpool .
#   docker run --rm kpool --help
#   docker run --rm --entrypoint kpool kpool --help

# Build stage: the same steps as a developer's machine. `scripts/setup
# build` installs the Debian packages needed to build and builds
# librdkafka (Debian bookworm's is older than kpool needs) into
# $KPOOL_CACHE; the Makefile links the programs against it with an rpath
# into /opt/kpool.
FROM debian:bookworm AS build

ENV KPOOL_CACHE=/opt/kpool
WORKDIR /src

# Dependencies first, so a source change does not rebuild librdkafka.
COPY scripts/ scripts/
RUN scripts/setup build && rm -rf /var/lib/apt/lists/*

COPY Makefile ./
COPY common/ common/
COPY consumer/ consumer/
COPY producer/ producer/
COPY tests/ tests/
RUN make -j"$(nproc)" bins

# Stage what the runtime image needs under /stage, paths kept: the
# binaries' rpath names librdkafka's directory under /opt/kpool.
RUN set -eu; \
    pc=$(scripts/setup env | sed -n 's/^KPOOL_RDKAFKA_PC=//p'); \
    libdir=$(dirname "$pc"); \
    mkdir -p "/stage$libdir" /stage/usr/local/bin; \
    cp -a "$libdir"/librdkafka.so* "/stage$libdir/"; \
    find "/stage$libdir" -type f -exec strip --strip-unneeded {} +; \
    for bin in kpool kpool-worker kpool-stub-llm kpool-bench; do \
        install -s -m 0755 "build/$bin" "/stage/usr/local/bin/$bin"; \
    done

# Runtime stage: the shared libraries the programs and librdkafka load,
# nothing to build with.
FROM debian:bookworm-slim

ARG DEBIAN_FRONTEND=noninteractive
RUN apt-get update \
    && apt-get install -y --no-install-recommends \
        ca-certificates libcurl4 libjson-c5 libmicrohttpd12 libssl3 \
        libsasl2-2 zlib1g libzstd1 \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --user-group --no-create-home \
        --home-dir /nonexistent --shell /usr/sbin/nologin kpool

COPY --from=build /stage/ /

USER kpool:kpool
ENTRYPOINT ["kpool-worker"]
