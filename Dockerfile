# proa's image: nothing but the bundle, dist/proa.js, and the Node.js that runs it.
#
#   docker build -t ghcr.io/example/proa:0.1.0 .
#   docker run --rm ghcr.io/example/proa:0.1.0 --help
#
# Its main use is as a source to copy proa from into your application's image (see the end of this file). The
# `portable` target below is the other way: proa with its own Node.js, installed by the Pod spec alone (job-portable.yaml).
# This final stage stays the default target: `docker build .` builds it as before.

# ---- build: the package's own build script, from the lockfile's exact dependencies ----
FROM node:24.21.0-bookworm-slim AS build
WORKDIR /build
COPY package.json package-lock.json ./
# No install scripts: esbuild's postinstall only swaps its JavaScript launcher for the native binary, and the bundle
# is byte-identical without it (package.json's allowScripts denies it for every npm ci, too).
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json proa.ts log.ts http.ts kube.ts shutdown.ts readyurl.ts summary.ts check.ts ./
# Writes /build/dist/proa.js: one CommonJS file with a node shebang, no dependencies at run time.
RUN npm run build

# ---- portable: proa's self-contained folder, for an application image left as it is (README's "proa in any image") ----
#   docker buildx build --platform linux/amd64,linux/arm64 --target portable -t ghcr.io/example/proa:0.1.0-portable .
# portable/build.sh writes both architectures' folders on the build machine's own platform (patchelf edits an arm64
# binary on amd64 as well), from the same pinned inputs as `npm run build:portable`: the Node.js builds by npm
# integrity, the C library and loader from Debian's .debs by SHA-256, checked before use. The script installs what it
# needs from Debian (patchelf at its pinned version, jq) and adds the arm64 architecture to dpkg.
FROM --platform=$BUILDPLATFORM node:24.21.0-bookworm-slim AS portable-build
WORKDIR /build
COPY package.json package-lock.json ./
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json proa.ts log.ts http.ts kube.ts shutdown.ts readyurl.ts summary.ts check.ts ./
COPY portable/ portable/
# Writes /build/dist/portable/linux-amd64/ and linux-arm64/, each with its manifest.json and SHA256SUMS.
RUN npm run build && bash portable/build.sh amd64 arm64

# The image: the folder at /proa and nothing else (no shell, no C library outside it). Its files are those of
# dist/portable/linux-$TARGETARCH byte for byte (compare with `sha256sum -c /proa/SHA256SUMS` from a copy of it);
# COPY gives them this build's time, where portable/build.sh's own layer tar has time 0.
# The init container runs /proa/bin/install DIR; with an image volume, the main container mounts its /proa directly.
FROM scratch AS portable
ARG TARGETARCH
COPY --from=portable-build /build/dist/portable/linux-${TARGETARCH}/ /proa/
USER 65532:65532
ENTRYPOINT ["/proa/bin/proa"]
CMD ["--help"]

# ---- final: distroless Node.js 24, the current LTS (20 reached its end of life on 2026-04-30); no shell, no package manager ----
# :nonroot is a moving tag; pin it by digest for builds that must not change under you (see the README's Setup):
#   FROM gcr.io/distroless/nodejs24-debian12:nonroot@sha256:<the digest `docker buildx imagetools inspect` prints>
FROM gcr.io/distroless/nodejs24-debian12:nonroot
COPY --from=build /build/dist/proa.js /proa/proa.js
# The image's "nonroot" user, by number so that Kubernetes' runAsNonRoot can check it.
USER 65532:65532
ENTRYPOINT ["/nodejs/bin/node", "/proa/proa.js"]
CMD ["--help"]

# ---- Adding proa to an existing application image ----
# proa must run in the same container as your program, so you do not run this image in your Pod: you copy the one
# file, proa.js, into your application's image, from this image as you pushed it (or from the "build" stage above):
#
#   FROM ghcr.io/example/proa:0.1.0 AS proa
#
#   FROM ghcr.io/example/my-app:1.0
#   COPY --from=proa /proa/proa.js /proa/proa.js
#
#   # Only when my-app has no Node.js 20 or later (24, the current LTS, recommended): a node binary built for the same C library as my-app.
#   #   glibc images (Debian, Ubuntu, RHEL/UBI, distroless/cc); node also needs libstdc++ and libgcc_s there:
#   COPY --from=node:24.21.0-bookworm-slim /usr/local/bin/node /usr/local/bin/node
#   #   musl images (Alpine), instead of the line above:
#   # COPY --from=node:24.21.0-alpine /usr/local/bin/node /usr/local/bin/node
#   # RUN apk add --no-cache libstdc++
#   # Check with `docker run --rm --entrypoint node ghcr.io/example/my-app-with-proa:1.0 --version`.
#
#   # proa is the command; your program and its arguments come after "--".
#   ENTRYPOINT ["node", "/proa/proa.js", "--shutdown-http-post", "http://localhost:8080/shutdown", "--"]
#   CMD ["my-program", "--its", "arguments"]
#
# Or leave the image's ENTRYPOINT alone and set the Pod's command and args instead, as job.yaml does:
#   command: ["node", "/proa/proa.js"]
#   args: ["--shutdown-http-post", "http://localhost:8080/shutdown", "--", "my-program", "--its", "arguments"]
