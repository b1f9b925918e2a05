// A SPA written from the specification's "Frontend Integration & Connection" (SYSTEM_CONTEXT.md) and
// nothing else: every call under /api/v1/ with credentials included; for POST, PUT, PATCH and DELETE the
// csrftoken cookie's value in the X-CSRFToken header; GET /api/v1/auth/me on load; a 401 shows the login
// view. No auth/csrf, no other cookie name, no token from a response body, no retry. The browser tests
// (tests/stack/spec_client.py) call window.spec.call and read the view. ?api=https://host:port is where
// the API is (default: this page's origin, behind a dev server's proxy).
const base = `${new URLSearchParams(location.search).get('api') ?? ''}/api/v1/`;

function cookie(name) {
  const match = document.cookie.match(new RegExp(`(?:^|; )${name}=([^;]*)`));
  return match ? decodeURIComponent(match[1]) : null;
}

function show(view, user) {
  for (const id of ['checking', 'login-view', 'user-view']) document.getElementById(id).hidden = id !== view;
  if (user) document.getElementById('user-email').textContent = user.email;
  document.body.dataset.view = view;
}

async function call(method, path, body) {
  const headers = {};
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  if (['POST', 'PUT', 'PATCH', 'DELETE'].includes(method)) headers['X-CSRFToken'] = cookie('csrftoken');
  const response = await fetch(base + path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    credentials: 'include',
  });
  const data = response.status === 204 ? null : await response.json();
  if (response.status === 401) show('login-view');
  else if (response.ok && data?.email) show('user-view', data);
  return { status: response.status, body: data };
}

window.spec = { call, cookie };
call('GET', 'auth/me');
