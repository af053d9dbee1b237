/** The submit-time answer to a request naming a callback: accepted, or a catalogued JSON error naming the rule. */
import { describe, expect, it } from 'vitest';
import { checkCallbackSubmit } from '../../responder/callbacks/submit.js';
import { parseCallbackSettings } from '../../responder/callbacks/settings.js';
import { CLIENT_ERRORS } from '../../shared/error-catalogue.js';

const id = 'c'.repeat(32);
const settings = parseCallbackSettings({ 'kueuer.io/async-callback-allow': 'https://hooks.example.com', 'kueuer.io/async-callback-secret': 'hooks' });

describe('checkCallbackSubmit', () => {
  it('is a no-op without the header', () => {
    expect(checkCallbackSubmit(undefined, settings, id)).toEqual({ ok: true });
  });

  it('gives the target of an allowed URL', () => {
    const r = checkCallbackSubmit('https://hooks.example.com/done', settings, id);
    expect(r.ok && r.target?.url.href).toBe('https://hooks.example.com/done');
  });

  it('answers 400 callback_not_allowed with the rule for a refused URL', () => {
    const r = checkCallbackSubmit('https://u:p@hooks.example.com/', settings, id);
    expect(r).toMatchObject({ ok: false, status: 400 });
    if (r.ok) return;
    expect(JSON.parse(r.body.toString())).toMatchObject({ error: 'callback_not_allowed', rule: 'userinfo', requestId: id, message: expect.any(String) });
    expect(CLIENT_ERRORS.callback_not_allowed.status).toBe(400);
  });

  it('answers 400 when the Service has no callback annotations', () => {
    const r = checkCallbackSubmit('https://hooks.example.com/', parseCallbackSettings({}), id);
    expect(r.ok === false && JSON.parse(r.body.toString())).toMatchObject({ error: 'callback_not_allowed', rule: 'not_allowed' });
  });

  it('answers 500 callback_misconfigured when the annotations are invalid', () => {
    const r = checkCallbackSubmit('https://hooks.example.com/', parseCallbackSettings({ 'kueuer.io/async-callback-allow': 'ftp://x' }), id);
    expect(r).toMatchObject({ ok: false, status: 500 });
    if (!r.ok)
      expect(JSON.parse(r.body.toString())).toMatchObject({
        error: 'callback_misconfigured',
        message: expect.stringMatching(/kueuer\.io\/async-callback-allow/),
      });
    expect(CLIENT_ERRORS.callback_misconfigured.status).toBe(500);
  });
});
