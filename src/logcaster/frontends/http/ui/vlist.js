// A virtualised list of one-line rows: however many items it holds, the DOM
// holds only the rows on screen and a few around them, so a tail at thousands
// of events a second stays smooth. Rows have one fixed height (ROW_PX, kept
// in step with app.css) so a row's place is its index times that.

export const ROW_PX = 22;
const OVERSCAN = 10; // rows drawn above and below the visible ones

export class VirtualList {
  // renderRow(item, index) -> an element; onPick(item) when a row is clicked.
  constructor(renderRow, onPick, maxItems) {
    this.renderRow = renderRow;
    this.onPick = onPick;
    this.maxItems = maxItems;
    this.items = [];
    this.node = document.createElement("div");
    this.node.className = "vlist";
    this.node.tabIndex = 0;
    this.space = document.createElement("div");
    this.space.className = "vlist-space";
    this.node.append(this.space);
    this._frame = 0;
    this.node.addEventListener("scroll", () => this.draw());
    this.node.addEventListener("click", (e) => {
      const row = e.target.closest(".row");
      if (row && row.dataset.index !== undefined) {
        const item = this.items[Number(row.dataset.index)];
        if (item !== undefined) this.onPick(item);
      }
    });
  }

  // Whether the view is at the end (within a row): the tail follows then.
  atBottom() {
    const n = this.node;
    return n.scrollTop + n.clientHeight >= n.scrollHeight - ROW_PX;
  }

  // How many rows the view shows at once.
  rowsOnScreen() {
    return Math.ceil(this.node.clientHeight / ROW_PX);
  }

  scrollToBottom() {
    this.node.scrollTop = this.node.scrollHeight;
    this.draw();
  }

  clear() {
    this.items = [];
    this.draw();
  }

  setItems(items) {
    this.items = items.slice(-this.maxItems);
    this.draw();
  }

  // Append items; past maxItems the oldest go. Returns how many were dropped.
  append(items) {
    this.items.push(...items);
    const over = this.items.length - this.maxItems;
    if (over > 0) this.items.splice(0, over);
    this.draw();
    return Math.max(0, over);
  }

  // Redraw on the next animation frame (many appends, one draw). The height is
  // set at once, so a scroll to the end right after an append reaches it.
  draw() {
    this.space.style.height = this.items.length * ROW_PX + "px";
    if (this._frame) return;
    this._frame = requestAnimationFrame(() => {
      this._frame = 0;
      this._drawNow();
    });
  }

  _drawNow() {
    const total = this.items.length;
    const top = this.node.scrollTop;
    const first = Math.max(0, Math.floor(top / ROW_PX) - OVERSCAN);
    const shown = Math.ceil(this.node.clientHeight / ROW_PX) + 2 * OVERSCAN;
    const last = Math.min(total, first + shown);
    const rows = [];
    for (let i = first; i < last; i++) {
      const row = this.renderRow(this.items[i], i);
      row.dataset.index = String(i);
      row.style.top = i * ROW_PX + "px";
      rows.push(row);
    }
    this.space.replaceChildren(...rows);
  }
}
