// The test SPA's views. ?transport=fetch|axios picks the API client; ?api=https://host:port is where
// the API is (default: this page's own origin, for a dev server that proxies /api).
import { ApiError, axiosClient, fetchClient } from './api.js';

const $ = (selector) => document.querySelector(selector);
const params = new URLSearchParams(location.search);
const transport = params.get('transport') === 'axios' ? 'axios' : 'fetch';
const apiOrigin = params.get('api') ?? '';

const createClient = transport === 'axios' ? axiosClient : fetchClient;
const api = createClient(apiOrigin, { onUnauthorized: () => show('login-view') });

function show(view) {
  for (const id of ['checking', 'login-view', 'user-view']) $(`#${id}`).hidden = id !== view;
  document.body.dataset.view = view;
}

function showUser(user) {
  $('#user-name').textContent = user.first_name || user.email;
  $('#user-email').textContent = user.email;
  $('#user-id').textContent = user.id;
  show('user-view');
}

function showError(error) {
  const box = $('#error');
  box.querySelector('.code').textContent = error.code;
  box.querySelector('.message').textContent = error.message;
  const lines = Object.entries(error.details).map(([field, messages]) => {
    const item = document.createElement('li');
    item.dataset.field = field;
    item.textContent = `${field}: ${typeof messages === 'string' ? messages : [messages].flat().join(' ')}`;
    return item;
  });
  box.querySelector('.details').replaceChildren(...lines);
  box.hidden = false;
}

// Runs what a click asks for; an API error is shown, anything else is a bug and is thrown.
async function act(action) {
  $('#error').hidden = true;
  try {
    await action();
  } catch (error) {
    if (!(error instanceof ApiError)) throw error;
    showError(error);
  }
}

function onSubmit(selector, action) {
  $(selector).addEventListener('submit', (event) => {
    event.preventDefault();
    act(() => action(Object.fromEntries(new FormData(event.target))));
  });
}

onSubmit('#login-form', async ({ email, password }) => {
  showUser(await api.request('POST', '/auth/login', { email, password }));
});

onSubmit('#signup-form', async ({ email, password, first_name }) => {
  showUser(await api.request('POST', '/auth/signup', { email, password, first_name }));
});

$('#logout').addEventListener('click', () => act(async () => {
  await api.request('POST', '/auth/logout');
  show('login-view');
}));

$('#transport').textContent = transport;
$('#api-origin').textContent = apiOrigin || location.origin;
for (const name of ['fetch', 'axios']) {
  const link = new URLSearchParams(params);
  link.set('transport', name);
  $(`#use-${name}`).href = `?${link}`;
}

// The session check on load: the user, or (401) the login view.
act(async () => {
  try {
    showUser(await api.request('GET', '/auth/me'));
  } catch (error) {
    if (error.status !== 401) throw error; // a 401 has already shown the login view
  }
});
