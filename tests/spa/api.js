// The test SPA's API client: the code the README's "Connecting a frontend" shows, the same lines.
// Two transports with one interface, request(method, path, body): it resolves to the JSON body
// (null for 204), or rejects with an ApiError built from the API's {message, code, details}; a 401
// from any call also calls onUnauthorized, which shows the login view.
import axios from 'axios';

export class ApiError extends Error {
  constructor(status, body) {
    super(body?.message ?? (status === 0 ? 'The API cannot be reached.' : `HTTP ${status}`));
    this.status = status; // 0: no response (network down, or CORS refused this origin)
    this.code = body?.code ?? (status === 0 ? 'NETWORK_ERROR' : 'HTTP_ERROR');
    this.details = body?.details ?? {};
  }
}

const UNSAFE = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

export function readCookie(name) {
  const match = document.cookie.match(new RegExp(`(?:^|; )${name}=([^;]*)`));
  return match ? decodeURIComponent(match[1]) : null;
}

// Django's CSRF cookie, csrftoken: the API contract's name, the same in every environment. Its value,
// or null if this page cannot see it (a page on another host than the API's).
export function csrfCookie() {
  return readCookie('csrftoken');
}

// CSRF bootstrap. GET auth/me (the session check on load) and GET auth/csrf set the CSRF cookie. The
// token rotates at login, signup and logout, so it is read from the cookie again for every unsafe
// request. A page on another host than the API (app.example.com, api.example.com) cannot see the
// API's cookie and sends the token from auth/csrf's response body instead.
async function csrfToken(fetchCsrf) {
  return csrfCookie() ?? (await fetchCsrf()).csrf_token;
}

export function fetchClient(apiOrigin, { onUnauthorized }) {
  async function request(method, path, body) {
    const headers = { Accept: 'application/json' };
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    if (UNSAFE.has(method)) {
      headers['X-CSRFToken'] = await csrfToken(() => request('GET', '/auth/csrf'));
    }
    let response;
    try {
      response = await fetch(`${apiOrigin}/api/v1${path}`, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        credentials: 'include', // send and store the session and CSRF cookies across origins
      });
    } catch {
      throw new ApiError(0); // the browser does not say whether the network or CORS failed
    }
    const data = response.status === 204 ? null : await response.json().catch(() => null);
    if (response.status === 401) onUnauthorized();
    if (!response.ok) throw new ApiError(response.status, data);
    return data;
  }
  return { name: 'fetch', request };
}

export function axiosClient(apiOrigin, { onUnauthorized }) {
  const http = axios.create({
    baseURL: `${apiOrigin}/api/v1`,
    withCredentials: true, // send and store the session and CSRF cookies across origins
    xsrfCookieName: 'csrftoken', // Django's names; axios's defaults are XSRF-TOKEN
    xsrfHeaderName: 'X-CSRFToken', // and X-XSRF-TOKEN
    withXSRFToken: true, // axios >= 1.6 sends the header to another origin only with this;
    // it goes with every request of this instance, so the instance is for the API only.
  });
  http.interceptors.request.use(async (config) => {
    // axios copies the cookie into the header itself where the page can read it.
    if (!UNSAFE.has(config.method.toUpperCase()) || csrfCookie() !== null) return config;
    config.headers.set('X-CSRFToken', await csrfToken(async () => (await http.get('/auth/csrf')).data));
    return config;
  });
  http.interceptors.response.use(
    (response) => response,
    (error) => {
      // Errors of the CSRF bootstrap come back through here already wrapped; bugs pass unchanged.
      if (!axios.isAxiosError(error)) return Promise.reject(error);
      if (error.response?.status === 401) onUnauthorized();
      return Promise.reject(new ApiError(error.response?.status ?? 0, error.response?.data));
    },
  );
  async function request(method, path, body) {
    const response = await http.request({ method, url: path, data: body });
    return response.status === 204 ? null : response.data;
  }
  return { name: 'axios', request };
}
