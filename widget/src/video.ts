/** `<video data-nearcart-gtin data-nearcart-from data-nearcart-to>`: a buy button over the video between those seconds. */

import { h } from "./render";
import { OVERLAY_CSS, adopt } from "./styles";

export function overlayVideo(
  video: HTMLVideoElement,
  label: () => string,
  onBuy: (gtin: string, button: HTMLElement) => void,
  guard: (fn: () => void) => () => void,
): void {
  const gtin = video.getAttribute("data-nearcart-gtin") || "";
  const from = parseFloat(video.getAttribute("data-nearcart-from") || "0") || 0;
  const to = parseFloat(video.getAttribute("data-nearcart-to") || "") || Infinity;
  const host = h("nearcart-buy");
  host.hidden = true;
  const shadow = host.attachShadow({ mode: "open" });
  adopt(shadow, OVERLAY_CSS);
  const button = h("button", { type: "button", "data-gtin": gtin });
  button.addEventListener("click", guard(() => onBuy(gtin, button)));
  shadow.append(button);
  document.body.append(host);

  const update = guard(() => {
    const t = video.currentTime;
    const show = video.isConnected && t >= from && t < to;
    if (show) {
      const box = video.getBoundingClientRect();
      const place: [string, number][] = [["--x", box.left + scrollX], ["--y", box.top + scrollY], ["--w", box.width], ["--h", box.height]];
      for (const [name, value] of place) host.style.setProperty(name, value + "px");
      button.textContent = label();
    }
    host.hidden = !show;
  });
  for (const event of ["timeupdate", "seeked", "play", "loadedmetadata"]) video.addEventListener(event, update);
  addEventListener("resize", update);
  update();
}
