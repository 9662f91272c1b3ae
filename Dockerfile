# Noctua: one image, every role (`noctua start|poll|process|sink|serve`).
FROM node:20-bookworm-slim
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts=false
COPY dist ./dist
ENV NODE_ENV=production
ENTRYPOINT ["node", "dist/cli/noctua.js"]
CMD ["start"]
