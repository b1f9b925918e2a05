// The dev server setup the README gives frontend developers: the SPA on http://localhost:5173 and the
// dev stack's API behind the same origin. The browser sees one origin and one site, so the session and
// CSRF cookies (SameSite=Lax) travel with every call, and CORS is not involved; Django still checks
// the Origin header of unsafe requests against CSRF_TRUSTED_ORIGINS (which defaults to
// CORS_ALLOWED_ORIGINS, including http://localhost:5173 in the dev stack).
import { defineConfig } from 'vite';

export default defineConfig({
  server: {
    proxy: {
      // '/api/' with the slash: a bare '/api' prefix would also proxy /api.js and the like.
      '/api/': {
        target: process.env.API_ORIGIN ?? 'https://localhost:8443',
        secure: false, // Node.js does not trust the dev stack's local CA
      },
    },
  },
});
