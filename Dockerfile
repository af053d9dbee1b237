# One image for every subcommand: kueuer webhook | responder | sidecar | local.
# Built in your CI (no Docker engine runs where Kueuer is developed):
#   docker build -t ghcr.io/<you>/kueuer:0.1.0 .
# NODE_IMAGE picks the Node 24 base of both stages. Leave it for the official
# image; scripts/dev/images.sh passes a base it assembles here (Debian bookworm
# from debootstrap + the npm registry's Node 24), see docs/images.md.
ARG NODE_IMAGE=node:24-bookworm-slim

# --- build: compile TypeScript with the dev dependencies
FROM ${NODE_IMAGE} AS build
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --ignore-scripts
COPY tsconfig.json tsconfig.build.json ./
COPY bin ./bin
COPY cli ./cli
COPY shared ./shared
COPY responder ./responder
COPY sidecar ./sidecar
COPY webhook ./webhook
COPY demo ./demo
RUN npm run build

# --- runtime: production dependencies only, tini as PID 1, non-root
FROM ${NODE_IMAGE}
RUN apt-get update \
 && apt-get install -y --no-install-recommends tini=0.19.* \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
ENV NODE_ENV=production
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts && npm cache clean --force
COPY --from=build /src/dist ./dist
COPY bin ./bin
# 65532: the uid the injected sidecar and the manifests run as.
USER 65532:65532
# tini forwards SIGTERM so the components drain, and reaps zombies.
ENTRYPOINT ["/usr/bin/tini", "--", "node", "/app/bin/kueuer.js"]
CMD ["--help"]
