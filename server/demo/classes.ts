/** Fashion-MNIST classes in label order, with the folder each one's demo images live in. */
export const DEMO_CLASSES: readonly { readonly label: string; readonly dir: string }[] = [
  { label: 'T-shirt/top', dir: 't-shirt-top' },
  { label: 'Trouser', dir: 'trouser' },
  { label: 'Pullover', dir: 'pullover' },
  { label: 'Dress', dir: 'dress' },
  { label: 'Coat', dir: 'coat' },
  { label: 'Sandal', dir: 'sandal' },
  { label: 'Shirt', dir: 'shirt' },
  { label: 'Sneaker', dir: 'sneaker' },
  { label: 'Bag', dir: 'bag' },
  { label: 'Ankle boot', dir: 'ankle-boot' },
];
