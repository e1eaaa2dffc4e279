# syntax=docker/dockerfile:1
# Sightline: CPU image. Build: docker build -t sightline .   Run: docker run -p 8080:8080 -v sightline-data:/data sightline
# GPU variant (CUDA base image, ONNXRUNTIME_NODE_INSTALL=cuda12): see docs/docker.md.
ARG NODE_IMAGE=node:20-bookworm-slim

# ---- builder: dev dependencies, TypeScript → dist/, then production-only node_modules ----
FROM ${NODE_IMAGE} AS builder
WORKDIR /app
# hnswlib-node compiles with node-gyp; better-sqlite3 falls back to it without a matching prebuilt.
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 make g++ ca-certificates \
 && rm -rf /var/lib/apt/lists/*
# skip (the .npmrc default) = CPU only; cuda12 downloads the CUDA execution provider (GPU variant).
ARG ONNXRUNTIME_NODE_INSTALL=skip
ENV ONNXRUNTIME_NODE_INSTALL=${ONNXRUNTIME_NODE_INSTALL}
COPY package.json package-lock.json .npmrc ./
# --ignore-scripts: the `prepare` script (tsc) cannot run before the sources are here; the native
# modules' own install scripts run in the rebuild below.
RUN npm ci --ignore-scripts --no-audit --no-fund \
 && npm rebuild better-sqlite3 hnswlib-node sharp onnxruntime-node
COPY tsconfig.json tsconfig.build.json ./
COPY bin ./bin
COPY cli ./cli
COPY model ./model
COPY training ./training
COPY index ./index
COPY server ./server
RUN npm run build && npm prune --omit=dev --ignore-scripts

# ---- runtime: node + production node_modules + dist + the files served at run time ----
FROM ${NODE_IMAGE} AS runtime
ENV NODE_ENV=production \
    SIGHTLINE_DATA=/data \
    SIGHTLINE_HOME=/data/sightline-home \
    SIGHTLINE_HOST=0.0.0.0 \
    SIGHTLINE_PORT=8080
WORKDIR /app
COPY --from=builder /app/node_modules ./node_modules
COPY --from=builder /app/dist ./dist
COPY --from=builder /app/model/default ./model/default
# Class names that `sightline models pull` imports the ImageNet models with.
COPY --from=builder /app/model/registry/imagenet-1k.txt ./model/registry/imagenet-1k.txt
COPY package.json ./
COPY bin ./bin
COPY server/public ./server/public
COPY server/demo ./server/demo
# /blobs: where deploy/compose.yaml mounts the volume shared by the replicas (SIGHTLINE_BLOB_DIR), owned by
# node so that a fresh named volume, which takes the ownership of the folder it is mounted on, is writable.
RUN mkdir -p /data /blobs && chown node:node /data /blobs
USER node
VOLUME ["/data"]
EXPOSE 8080
# Ready = model loaded, warmed up and the golden image classified correctly (not just "process up").
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.SIGHTLINE_PORT||8080)+'/v2/health/ready').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
# node is PID 1 and handles SIGTERM itself: stop accepting, finish requests, checkpoint jobs, close SQLite.
CMD ["node", "bin/sightline.js", "serve"]
