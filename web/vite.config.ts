import { resolve } from "node:path";
import react from "@vitejs/plugin-react";
import { defineConfig } from "vitest/config";

// The build lands in the Python package (api/static), which `parley serve` serves at `/`:
// `make run` needs no Node.js (docs/web.md says why the build is committed).
export default defineConfig({
  plugins: [react()],
  base: "/",
  build: {
    outDir: resolve(__dirname, "../api/static"),
    emptyOutDir: true,
    assetsDir: "assets",
    sourcemap: false,
    chunkSizeWarningLimit: 2048,
    rollupOptions: {
      input: {
        app: resolve(__dirname, "index.html"),
        graphiql: resolve(__dirname, "graphiql.html"),
      },
    },
  },
  server: {
    // `npm run dev`: the API of a local `parley serve` behind Vite's dev server.
    proxy: {
      "/graphql": { target: "http://127.0.0.1:8000", ws: true },
      "/auth": "http://127.0.0.1:8000",
      "/audit": "http://127.0.0.1:8000",
      // Uploads go to the API; a browser opening /documents gets the page.
      "/documents": {
        target: "http://127.0.0.1:8000",
        bypass: (req) => (req.method === "POST" ? undefined : "/index.html"),
      },
    },
  },
  test: {
    environment: "jsdom",
    include: ["src/**/*.test.{ts,tsx}"],
    setupFiles: ["src/test-setup.ts"],
  },
});
