/**
 * The widget's CSS, adopted as a constructable stylesheet: pages with `style-src 'self'` block <style> and
 * style="" but not CSSStyleSheet.replaceSync. `all: initial !important` on :host beats host rules such as
 * `* { all: unset }`; the brand's look comes in through the --nc-* custom properties set from the campaign theme.
 */
export const CSS = `
:host{all:initial!important;position:fixed!important;inset:0!important;z-index:2147483647!important;display:block!important;
--p:var(--nc-primary,#1a56db);--r:var(--nc-radius,8px);font:15px/1.4 var(--nc-font,system-ui,sans-serif);color:#1f2328}
:host([hidden]){display:none!important}
*{box-sizing:border-box}
.backdrop{position:fixed;inset:0;background:#0008;display:flex;align-items:center;justify-content:center;padding:12px}
.dialog{background:#fff;border-radius:var(--r);width:100%;max-width:440px;max-height:100%;overflow:auto;padding:16px;box-shadow:0 8px 32px #0005}
header{display:flex;justify-content:space-between;align-items:center}
h2{font-size:19px;margin:0}
h3{font-size:14px;margin:14px 0 6px;text-transform:uppercase;letter-spacing:.04em;color:#57606a}
.product,.near,.msg{margin:6px 0;color:#57606a}
button,input{font:inherit;border-radius:var(--r);min-height:36px}
button{cursor:pointer;border:0;background:var(--p);color:#fff;padding:6px 12px}
.x{background:none;color:#1f2328;font-size:24px;line-height:1;padding:0 8px}
.alt{background:none;color:var(--p);border:1px solid var(--p)}
.where{display:flex;flex-wrap:wrap;gap:6px;align-items:end;margin:10px 0}
label{display:flex;flex-direction:column;font-size:13px;flex:1}
input{border:1px solid #8c959f;padding:6px 8px;color:inherit;background:#fff}
:focus-visible{outline:3px solid var(--p);outline-offset:2px}
ul{list-style:none;margin:0;padding:0}
li a{display:flex;justify-content:space-between;gap:8px;padding:10px;margin:4px 0;border:1px solid #d0d7de;border-radius:var(--r);color:inherit;text-decoration:none}
li a:hover{border-color:var(--p)}
.who,.what{display:flex;flex-direction:column}
.what{text-align:right}
.in_stock{color:#116329}.low_stock,.unc{color:#9a6700}.km{color:#57606a}
.fallback a{color:var(--p);justify-content:flex-start}
`;

/** Adopt `css` into a shadow root; Safari before 16.4 lacks constructable stylesheets and gets a <style>. */
export function adopt(root: ShadowRoot, css: string): void {
  if ("adoptedStyleSheets" in Document.prototype && "replaceSync" in CSSStyleSheet.prototype) {
    const sheet = new CSSStyleSheet();
    sheet.replaceSync(css);
    root.adoptedStyleSheets = [sheet];
  } else {
    const style = document.createElement("style");
    style.textContent = css;
    root.append(style);
  }
}

/** The buy button laid over a video; the host covers the video and lets clicks through except on the button. */
export const OVERLAY_CSS = `
:host{all:initial!important;position:absolute!important;display:block!important;pointer-events:none!important;
left:var(--x)!important;top:var(--y)!important;width:var(--w)!important;height:var(--h)!important;z-index:2147483646!important}
:host([hidden]){display:none!important}
button{position:absolute;right:12px;bottom:48px;pointer-events:auto;cursor:pointer;border:0;border-radius:var(--nc-radius,8px);
background:var(--nc-primary,#1a56db);color:#fff;font:600 16px/1 var(--nc-font,system-ui,sans-serif);padding:10px 16px;box-shadow:0 2px 8px #0006}
button:focus-visible{outline:3px solid #fff;outline-offset:2px}
`;
