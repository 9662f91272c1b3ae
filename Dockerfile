# Noctua: one image, every role (`noctua start|poll|process|sink|serve`).
FROM node:20-bookworm-slim
WORKDIR /app
# Chromium prints the reports' PDFs (puppeteer-core drives Debian's build; nothing is downloaded at run time).
RUN apt-get update && apt-get install -y --no-install-recommends chromium fonts-dejavu-core && rm -rf /var/lib/apt/lists/*
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts=false
COPY dist ./dist
ENV NODE_ENV=production
ENTRYPOINT ["node", "dist/cli/noctua.js"]
CMD ["start"]
